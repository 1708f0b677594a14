"""Recipients from a CSV file or a JSON list, validated and merged by address.

Pure: a file or models in, event-sized groups of recipients and per-line errors out. Used
by the import and bulk routes; no database, no HTTP. A large import holds neither its
file nor its recipients in memory: the file is read as a stream and each finished group
is kept as its JSON in a temporary file (see MergedRecipients).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from pydantic_core import to_json

from pigeon_api.schemas.recipients import (
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    MAX_ATTRIBUTES_BYTES,
    RowError,
    attribute_key_problem,
    attribute_value_problem,
    attributes_size_problem,
)
from pigeon_common.events import RecipientData
from pigeon_common.validation import (
    CONTROL_CHARACTERS,
    InvalidAddressError,
    RecipientIds,
    header_safe,
    normalize_address,
)

MAX_ERRORS_SHOWN = 100
MAX_NAME_CHARS = 200
# One RecipientsAdded event at most (NATS messages stay well under 1 MB).
GROUP_MAX_COUNT = 1000
GROUP_MAX_BYTES = 400_000
# Finished groups stay in memory up to this size, then go to a temporary file.
SPOOL_MEMORY_BYTES = 4 * 1024 * 1024
READ_BYTES = 256 * 1024


class CsvFormatError(ValueError):
    """The file as a whole cannot be read as a recipients CSV (encoding, header, quoting)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


Payload = dict[str, Any]


@dataclass
class MergedRecipients:
    """Recipients of one campaign keyed by address, in event-sized groups in first-seen
    order, plus what the input held (rows, merges, rejected lines).

    Within a group a repeated address merges into its first row. One whose first row is
    in an earlier group (already written out) travels again in a later group: the
    projector merges it by the same rule (a non-empty name wins, attributes merge key by
    key), so the campaign ends the same. Each recipient is kept as the JSON-ready dict the
    RecipientsAdded event carries, and a finished group as that JSON: every field was
    validated on the way in, so a large import builds no model per row.
    """

    campaign_id: uuid.UUID
    max_count: int = GROUP_MAX_COUNT
    max_bytes: int = GROUP_MAX_BYTES
    rows: int = 0
    merged: int = 0
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def __post_init__(self) -> None:
        self._ids = RecipientIds(self.campaign_id)
        # str hashes of the recipient ids seen in earlier groups, for the counts only (a
        # collision, about 2**-64 per pair, would miscount one row, never merge data).
        self._seen_before: set[int] = set()
        self._group: dict[str, Payload] = {}
        self._group_bytes = 0
        # Lives as long as the import: closed by close() once the events are stored.
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(SPOOL_MEMORY_BYTES)  # noqa: SIM115
        self._group_sizes: list[int] = []

    def add(self, email: str, name: str, attributes: dict[str, Any]) -> None:
        self.rows += 1
        rid = self._ids.text(email)
        previous = self._group.get(rid)
        if previous is not None:
            self.merged += 1
            self._group_bytes -= json_size_bound(previous)
            previous["name"] = name or previous["name"]
            previous["attributes"] = {**previous["attributes"], **attributes}
            self._group_bytes += json_size_bound(previous)
            return
        fingerprint = hash(rid)
        if fingerprint in self._seen_before:
            self.merged += 1
        else:
            self.imported += 1
        payload = {"recipient_id": rid, "email": email, "name": name, "attributes": attributes}
        size = json_size_bound(payload)
        if self._group and (
            len(self._group) >= self.max_count or self._group_bytes + size > self.max_bytes
        ):
            self._close_group()
        self._group[rid] = payload
        self._group_bytes += size

    def reject(self, line: int, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(RowError(line=line, reason=reason))

    def _close_group(self) -> None:
        self._seen_before.update(hash(rid) for rid in self._group)
        data = to_json(list(self._group.values()))
        self._spool.write(data)
        self._group_sizes.append(len(data))
        self._group.clear()
        self._group_bytes = 0

    def groups(self) -> Iterator[bytes]:
        """Each group as the JSON array of its recipients, in order (reads the groups
        back; call once the input is done)."""
        if self._group:
            self._close_group()
        self._spool.seek(0)
        for size in self._group_sizes:
            yield self._spool.read(size)

    @property
    def recipients(self) -> list[RecipientData]:
        """Every recipient as the campaign would hold it after this input alone (the
        groups read back and merged: for small inputs and tests)."""
        merged: dict[str, RecipientData] = {}
        for group in self.groups():
            for item in json.loads(group):
                recipient = RecipientData.model_validate(item)
                earlier = merged.get(item["recipient_id"])
                if earlier is not None:
                    recipient = earlier.model_copy(
                        update={
                            "name": recipient.name or earlier.name,
                            "attributes": {**earlier.attributes, **recipient.attributes},
                        }
                    )
                merged[item["recipient_id"]] = recipient
        return list(merged.values())

    def close(self) -> None:
        self._spool.close()


def _line_of_first_fault(data: IO[bytes], fault: bytes | None) -> int:
    """The line holding the first NUL (`fault` b"\\0") or, with None, the first byte that
    is not UTF-8 (only ever read after a fault was seen; no UTF-8 sequence holds b"\\n",
    so each line decodes on its own)."""
    data.seek(0)
    for number, line in enumerate(data, 1):
        if fault is not None and fault in line:
            return number
        if fault is None:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


class _NulFoundError(Exception):
    pass


class _NulCheckingReader(io.RawIOBase):
    """The file's bytes, raising _NulFoundError at the first NUL: a NUL is a broken file,
    not data (PostgreSQL stores it in neither text nor jsonb) and csv reads it as data."""

    def __init__(self, data: IO[bytes]) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        if b"\x00" in chunk:
            raise _NulFoundError
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _text(data: IO[bytes]) -> io.TextIOWrapper:
    reader = io.BufferedReader(_NulCheckingReader(data), READ_BYTES)
    return io.TextIOWrapper(reader, encoding="utf-8-sig", errors="strict", newline="")


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


async def read_csv(data: bytes | IO[bytes], campaign_id: uuid.UUID) -> MergedRecipients:
    """`parse_csv` in a worker thread: a file of a million rows takes seconds to read, and
    the event loop goes on answering the process's other requests meanwhile."""
    return await asyncio.to_thread(parse_csv, data, campaign_id)


def parse_csv(data: bytes | IO[bytes], campaign_id: uuid.UUID) -> MergedRecipients:
    """Parse a recipients CSV (header row; `email`, optional `name`, other columns become
    attributes) read from `data` as it goes. Bad rows are collected with their line; the
    file's own faults (not UTF-8, a NUL, broken quoting, no header) raise."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    result = MergedRecipients(campaign_id)
    try:
        _parse_into(result, csv.reader(_text(source), strict=True))
    except UnicodeDecodeError:
        result.close()
        raise CsvFormatError(
            _line_of_first_fault(source, None), "the file is not UTF-8 text"
        ) from None
    except _NulFoundError:
        result.close()
        raise CsvFormatError(
            _line_of_first_fault(source, b"\x00"), "the file contains a NUL character"
        ) from None
    except CsvFormatError:
        result.close()
        raise
    return result


def _parse_into(result: MergedRecipients, reader: Any) -> None:
    try:
        header = next(reader, None)
        if header is None:
            raise CsvFormatError(None, "the file is empty: a header row with `email` is required")
        email_at, name_at, attributes = _header(header)
        rows = _RowReader(result, len(header), email_at, name_at, attributes)
        line = reader.line_num + 1
        for row in reader:
            start, line = line, reader.line_num + 1
            rows.add(start, row)
    except csv.Error as exc:
        raise CsvFormatError(reader.line_num or None, f"malformed CSV: {exc}") from None


@dataclass
class _RowReader:
    """One CSV row at a time into `result`: the checks of RecipientCreate, on strings.

    The common row (a plain ASCII address, short values) takes the fast path of each
    check; anything else goes through the shared rules, which word the errors.
    """

    result: MergedRecipients
    width: int
    email_at: int
    name_at: int | None
    attributes: list[tuple[int, str]]

    def __post_init__(self) -> None:
        self._key_bytes = sum(6 * len(key) + 8 for _, key in self.attributes)

    def add(self, line: int, row: list[str]) -> None:
        result = self.result
        if not row or (len(row) == 1 and not row[0].strip()):
            return  # a blank line
        if len(row) != self.width:
            result.reject(line, f"expected {self.width} fields, found {len(row)}")
            return
        try:
            email = normalize_address(row[self.email_at])
        except InvalidAddressError as exc:
            result.reject(line, f"email {row[self.email_at]!r}: {exc}")
            return
        name = row[self.name_at].strip() if self.name_at is not None else ""
        if len(name) > MAX_NAME_CHARS or CONTROL_CHARACTERS.search(name):
            try:
                header_safe(name, "name", MAX_NAME_CHARS)
            except ValueError as exc:
                result.reject(line, str(exc))
                return
        values: dict[str, Any] = {}
        chars = 0
        for position, key in self.attributes:
            value = row[position]
            if not value:
                continue
            if len(value) > MAX_ATTRIBUTE_VALUE_CHARS or not value.isascii():
                problem = attribute_value_problem(key, value)
                if problem:
                    result.reject(line, problem)
                    return
            values[key] = value
            chars += len(value)
        # Each character takes at most 6 bytes in JSON: only a large row needs encoding.
        if 6 * chars + self._key_bytes > MAX_ATTRIBUTES_BYTES:
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


def json_size_bound(recipient: Payload) -> int:
    """An upper bound of the recipient's size in the event's JSON, without encoding it."""
    size = 120 + text_size_bound(recipient["email"]) + text_size_bound(recipient["name"])
    for key, value in recipient["attributes"].items():
        size += 8 + len(key) + (text_size_bound(value) if isinstance(value, str) else 32)
    return size
