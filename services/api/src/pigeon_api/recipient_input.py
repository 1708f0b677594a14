"""Recipients from a CSV file or a JSON list, validated and merged by address.

Pure: bytes or models in, recipients and per-line errors out. Used by the import and
bulk routes; no database, no HTTP.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pigeon_api.schemas.recipients import (
    MAX_ATTRIBUTES,
    RowError,
    attribute_key_problem,
    attribute_value_problem,
    attributes_size_problem,
)
from pigeon_common.events import RecipientData
from pigeon_common.validation import (
    InvalidAddressError,
    RecipientIds,
    address_key,
    header_safe,
    normalize_address,
)

MAX_ERRORS_SHOWN = 100
MAX_NAME_CHARS = 200
UTF8_BOM = "\ufeff"


class CsvFormatError(ValueError):
    """The file as a whole cannot be read as a recipients CSV (encoding, header, quoting)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


Payload = dict[str, Any]


@dataclass
class MergedRecipients:
    """Recipients of one campaign keyed by case-folded address, in first-seen order.

    Each is kept as the JSON-ready dict the RecipientsAdded event carries: every field was
    validated on the way in, so a large import builds no model per row.
    """

    campaign_id: uuid.UUID
    by_key: dict[str, Payload] = field(default_factory=dict)
    rows: int = 0
    merged: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def __post_init__(self) -> None:
        self._ids = RecipientIds(self.campaign_id)

    def add(self, email: str, name: str, attributes: dict[str, Any]) -> None:
        self.rows += 1
        key = address_key(email)
        previous = self.by_key.get(key)
        if previous is None:
            self.by_key[key] = {
                "recipient_id": self._ids.text(email),
                "email": email,
                "name": name,
                "attributes": attributes,
            }
            return
        self.merged += 1
        previous["name"] = name or previous["name"]
        previous["attributes"] = {**previous["attributes"], **attributes}

    def reject(self, line: int, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(RowError(line=line, reason=reason))

    @property
    def payloads(self) -> list[Payload]:
        return list(self.by_key.values())

    @property
    def recipients(self) -> list[RecipientData]:
        return [RecipientData.model_validate(p) for p in self.by_key.values()]


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvFormatError(line, "the file is not UTF-8 text") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise CsvFormatError(text[:nul].count("\n") + 1, "the file contains a NUL character")
    return text.removeprefix(UTF8_BOM)


def _header(row: list[str]) -> tuple[int, int | None, list[tuple[int, str]]]:
    """Positions of email, name and the attribute columns in a header row."""
    names = [cell.strip() for cell in row]
    lowered = [n.lower() for n in names]
    if "email" not in lowered:
        raise CsvFormatError(1, "the header row has no `email` column")
    seen: set[str] = set()
    for name in lowered:
        if name in seen:
            raise CsvFormatError(1, f"the header row names column {name!r} twice")
        seen.add(name)
    email_at = lowered.index("email")
    name_at = lowered.index("name") if "name" in lowered else None
    attributes: list[tuple[int, str]] = []
    for position, column in enumerate(names):
        if position in (email_at, name_at):
            continue
        problem = attribute_key_problem(column)
        if problem:
            raise CsvFormatError(1, f"column {column!r}: {problem}")
        attributes.append((position, column))
    if len(attributes) > MAX_ATTRIBUTES:
        raise CsvFormatError(1, f"at most {MAX_ATTRIBUTES} attribute columns")
    return email_at, name_at, attributes


def parse_csv(data: bytes, campaign_id: uuid.UUID) -> MergedRecipients:
    """Parse a recipients CSV (header row; `email`, optional `name`, other columns become
    attributes). Bad rows are collected with their line; the file's own faults raise."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""), strict=True)
    result = MergedRecipients(campaign_id)
    try:
        header = next(reader, None)
        if header is None:
            raise CsvFormatError(None, "the file is empty: a header row with `email` is required")
        email_at, name_at, attributes = _header(header)
        width = len(header)
        line = reader.line_num + 1
        for row in reader:
            start, line = line, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                result.reject(start, f"expected {width} fields, found {len(row)}")
                continue
            _add_row(result, start, row, email_at, name_at, attributes)
    except csv.Error as exc:
        raise CsvFormatError(reader.line_num or None, f"malformed CSV: {exc}") from None
    return result


def _add_row(
    result: MergedRecipients,
    line: int,
    row: list[str],
    email_at: int,
    name_at: int | None,
    attributes: list[tuple[int, str]],
) -> None:
    try:
        email = normalize_address(row[email_at])
    except InvalidAddressError as exc:
        result.reject(line, f"email {row[email_at]!r}: {exc}")
        return
    name = row[name_at].strip() if name_at is not None else ""
    try:
        header_safe(name, "name", MAX_NAME_CHARS)
    except ValueError as exc:
        result.reject(line, str(exc))
        return
    values: dict[str, Any] = {}
    for position, key in attributes:
        value = row[position]
        problem = attribute_value_problem(key, value)
        if problem:
            result.reject(line, problem)
            return
        if value != "":
            values[key] = value
    problem = attributes_size_problem(values)
    if problem:
        result.reject(line, problem)
        return
    result.add(email, name, values)


def merge_list(
    campaign_id: uuid.UUID, items: Iterable[tuple[str, str, dict[str, Any]]]
) -> MergedRecipients:
    """Merge already-validated (email, name, attributes) items by address."""
    result = MergedRecipients(campaign_id)
    for email, name, attributes in items:
        result.add(email, name, attributes)
    return result


def text_size_bound(text: str) -> int:
    """Bytes `text` takes at most inside a JSON string: exact for printable ASCII, six
    per character (a \\uXXXX escape) otherwise."""
    if text.isascii() and text.isprintable():
        return len(text) + text.count('"') + text.count("\\")
    return 6 * len(text)


def json_size_bound(recipient: RecipientData | Payload) -> int:
    """An upper bound of the recipient's size in the event's JSON, without encoding it."""
    if isinstance(recipient, RecipientData):
        recipient = {
            "email": recipient.email,
            "name": recipient.name,
            "attributes": recipient.attributes,
        }
    size = 120 + text_size_bound(recipient["email"]) + text_size_bound(recipient["name"])
    for key, value in recipient["attributes"].items():
        size += 8 + len(key) + (text_size_bound(value) if isinstance(value, str) else 32)
    return size


R = TypeVar("R", RecipientData, Payload)


def chunk(recipients: list[R], max_count: int = 1000, max_bytes: int = 400_000) -> list[list[R]]:
    """Split recipients into event-sized groups (NATS messages stay well under 1 MB)."""
    chunks: list[list[R]] = []
    current: list[R] = []
    size = 0
    for recipient in recipients:
        estimate = json_size_bound(recipient)
        if current and (len(current) >= max_count or size + estimate > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(recipient)
        size += estimate
    if current:
        chunks.append(current)
    return chunks
