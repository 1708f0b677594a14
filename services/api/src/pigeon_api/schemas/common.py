"""Field types shared by the request models: every string that can reach a mail header
is refused when it holds a line break; addresses are validated by email-validator."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from pigeon_common.validation import CONTROL_CHARACTERS, InvalidAddressError, normalize_address

T = TypeVar("T")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are errors; numbers and flags are strict."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_control(value: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain line breaks or control characters")
    return value


def no_nul(value: str) -> str:
    """PostgreSQL cannot store NUL in text: refuse it at the door, not in the projector."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _address(value: str) -> str:
    try:
        return normalize_address(value)
    except InvalidAddressError as exc:
        raise ValueError(f"invalid email address: {exc}") from None


def _host(value: str) -> str:
    if not _HOST.fullmatch(value):
        raise ValueError("must be a host name or an IP address")
    return value.lower()


def _folder(value: str) -> str:
    _no_control(value)
    if value.startswith(" ") or value.endswith(" "):
        raise ValueError("must not start or end with a space")
    return value


HeaderText = Annotated[str, Field(max_length=200), AfterValidator(_no_control)]
NonEmptyHeaderText = Annotated[
    str, Field(min_length=1, max_length=200), AfterValidator(_no_control)
]
Subject = Annotated[str, Field(min_length=1, max_length=900), AfterValidator(_no_control)]
EmailAddress = Annotated[
    str, Field(max_length=320, json_schema_extra={"format": "email"}), AfterValidator(_address)
]
HostName = Annotated[
    str,
    Field(min_length=1, max_length=253, json_schema_extra={"pattern": f"^(?:{_HOST.pattern})$"}),
    AfterValidator(_host),
]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
FolderName = Annotated[str, Field(max_length=200), AfterValidator(_folder)]
Password = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_no_control)]
# A filter or parameter from a query string: PostgreSQL cannot compare NUL and no stored
# value holds a control character, so such input is refused (422 naming it), not searched.
QueryText = Annotated[str, AfterValidator(_no_control)]
RateLimit = Annotated[StrictInt, Field(ge=1, le=10_000_000)]
Flag = StrictBool


class Page(BaseModel, Generic[T]):
    """A list response: one page of `data` and the `count` of all matching rows."""

    data: list[T]
    count: int


class ShareCreate(RequestModel):
    email: EmailAddress


class SharePublic(BaseModel):
    user_id: uuid.UUID
    email: str | None


class Accepted(BaseModel):
    """Answered (202) when the change is stored but the read models have not caught up
    within PIGEON_READ_YOUR_WRITES_TIMEOUT_SEC; read it again shortly."""

    id: str
    status: str = "accepted"
