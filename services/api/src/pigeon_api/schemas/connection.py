"""What a mailbox connection test answers."""

from __future__ import annotations

from pydantic import BaseModel


class FolderPublic(BaseModel):
    name: str
    raw_name: str
    flags: list[str]
    selectable: bool


class LoginResult(BaseModel):
    ok: bool
    message: str


class ConnectionTestPublic(BaseModel):
    """Each server's login, the IMAP folders with their special-use flags, and the
    folders suggested for Sent (flagged \\Sent) and bounces (by name)."""

    smtp: LoginResult
    imap: LoginResult
    folders: list[FolderPublic]
    suggested_sent_folder: str | None
    suggested_bounce_folder: str | None
