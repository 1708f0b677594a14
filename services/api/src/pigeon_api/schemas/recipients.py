"""Recipient models and the rules for custom attributes."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from pigeon_api.schemas.common import EmailAddress, HeaderText, RequestModel

MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_VALUE_CHARS = 10_000
MAX_ATTRIBUTES_BYTES = 64 * 1024
MAX_BULK = 10_000
ATTRIBUTE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

AttributeValue = StrictStr | StrictBool | StrictInt | StrictFloat | None


def attribute_key_problem(key: str) -> str | None:
    """Why `key` cannot name an attribute (templates read it as recipient.<key>), or None."""
    if not ATTRIBUTE_KEY.fullmatch(key):
        return (
            f"attribute name {key!r} must start with a letter or underscore and hold only "
            "letters, digits and underscores (at most 64)"
        )
    return None


def _is_utf8_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def attribute_value_problem(key: str, value: Any) -> str | None:
    """Why a string attribute value cannot be stored, or None."""
    if isinstance(value, str):
        if len(value) > MAX_ATTRIBUTE_VALUE_CHARS:
            return f"attribute {key!r} is longer than {MAX_ATTRIBUTE_VALUE_CHARS} characters"
        if "\x00" in value:
            return f"attribute {key!r} must not contain NUL characters"
        if not value.isascii() and not _is_utf8_text(value):
            # JSON can spell half a UTF-16 pair ("\ud800"); no stored text can hold one.
            return f"attribute {key!r} holds an unpaired surrogate, which is not text"
    return None


def attributes_size_problem(attributes: dict[str, Any]) -> str | None:
    # Each character takes at most 6 bytes in JSON: only a large row needs encoding.
    bound = sum(6 * (len(k) + len(str(v))) + 8 for k, v in attributes.items())
    if bound <= MAX_ATTRIBUTES_BYTES:
        return None
    size = len(json.dumps(attributes, ensure_ascii=False).encode())
    if size > MAX_ATTRIBUTES_BYTES:
        return f"attributes take {size} bytes; at most {MAX_ATTRIBUTES_BYTES} per recipient"
    return None


def check_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
    for key, value in attributes.items():
        problem = attribute_key_problem(key) or attribute_value_problem(key, value)
        if problem:
            raise ValueError(problem)
    problem = attributes_size_problem(attributes)
    if problem:
        raise ValueError(problem)
    return attributes


Attributes = Annotated[
    dict[str, AttributeValue],
    Field(
        json_schema_extra={
            "propertyNames": {"pattern": f"^{ATTRIBUTE_KEY.pattern}$"},
            "maxProperties": MAX_ATTRIBUTES,
        }
    ),
    AfterValidator(check_attributes),
]


class RecipientCreate(RequestModel):
    email: EmailAddress
    name: HeaderText = ""
    attributes: Attributes = Field(default_factory=dict)


class RecipientsBulkCreate(RequestModel):
    recipients: Annotated[list[RecipientCreate], Field(min_length=1, max_length=MAX_BULK)]


class RecipientPublic(BaseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    email: str
    name: str
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RowError(BaseModel):
    line: int
    reason: str


class ImportResult(BaseModel):
    """What a bulk add or CSV import did. `merged` counts rows whose address appeared
    earlier in the same request (merged into one recipient)."""

    imported: int
    merged: int
    rejected: list[RowError]
    rejected_count: int
