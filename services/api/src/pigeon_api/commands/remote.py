"""A remote server (the mailbox's SMTP or IMAP, or imap-sync) failed a command."""

from __future__ import annotations


class RemoteError(Exception):
    """The command was allowed but a server it needs failed; `status` is the gateway
    status a surface shows (502 the server refused or broke, 503 none runs, 504 too
    slow)."""

    def __init__(self, code: str, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
