"""Mailbox models: requests carry passwords, responses never do."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from pigeon_api.schemas.common import (
    EmailAddress,
    FolderName,
    HeaderText,
    HostName,
    NonEmptyHeaderText,
    Password,
    Port,
    RateLimit,
    RequestModel,
)

Security = Literal["plain", "starttls", "tls"]
AppendMode = Literal["auto", "always", "never"]


class ServerIn(RequestModel):
    host: HostName
    port: Port
    security: Security
    username: NonEmptyHeaderText
    password: Password


class SmtpServerIn(ServerIn):
    """An SMTP server; an empty username means no AUTH (a relay that trusts the host)."""

    username: HeaderText = ""
    password: Password | Literal[""] = ""


class ServerPatch(RequestModel):
    host: HostName | None = None
    port: Port | None = None
    security: Security | None = None
    username: NonEmptyHeaderText | None = None
    password: Password | None = None


class MailboxCreate(RequestModel):
    name: NonEmptyHeaderText
    from_name: HeaderText = ""
    from_address: EmailAddress
    smtp: SmtpServerIn
    imap: ServerIn
    sent_folder: FolderName = ""
    bounce_folder: FolderName = ""
    rate_per_second: RateLimit | None = None
    rate_per_hour: RateLimit | None = None
    rate_per_day: RateLimit | None = None
    append_to_sent: AppendMode = "auto"


class MailboxUpdate(RequestModel):
    """Only the fields given change; `null` clears a rate limit."""

    name: NonEmptyHeaderText | None = None
    from_name: HeaderText | None = None
    from_address: EmailAddress | None = None
    smtp: ServerPatch | None = None
    imap: ServerPatch | None = None
    sent_folder: FolderName | None = None
    bounce_folder: FolderName | None = None
    rate_per_second: RateLimit | None = None
    rate_per_hour: RateLimit | None = None
    rate_per_day: RateLimit | None = None
    append_to_sent: AppendMode | None = None


class ServerPublic(BaseModel):
    host: str
    port: int
    security: Security
    username: str
    password_set: bool


class MailboxChoice(BaseModel):
    """A mailbox as someone who may send through it sees it."""

    id: uuid.UUID
    name: str
    from_name: str
    from_address: str
    owner_id: uuid.UUID | None


class MailboxPublic(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID | None
    shared_with: list[uuid.UUID]
    name: str
    from_name: str
    from_address: str
    smtp: ServerPublic
    imap: ServerPublic
    sent_folder: str
    bounce_folder: str
    rate_per_second: int | None
    rate_per_hour: int | None
    rate_per_day: int | None
    append_to_sent: AppendMode
    created_at: datetime
    updated_at: datetime
