"""What kind of failure a connection to a mailbox server was: pure, no I/O.

A connection error must tell the person what went wrong (refused, timeout, TLS, not a
mail server, login refused) without turning the API into a port scanner: the remote's
bytes are shown only when they are a well-formed SMTP reply (a code and printable text)
or a parsed IMAP response, cut to REPLY_MAX characters. Anything else (an HTTP page, a
NATS `INFO {...}` banner, binary) is named "not an SMTP server", never echoed.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import aiosmtplib

from pigeon_common.host_policy import HostDeniedError
from pigeon_common.imap_protocol import (
    ImapAuthError,
    ImapConnectionError,
    ImapError,
    ImapProtocolError,
    ImapRefusedError,
    ImapTimeoutError,
)

REPLY_MAX = 200


class FailureKind(StrEnum):
    REFUSED = "refused"  # nothing listens there
    TIMEOUT = "timeout"
    TLS = "tls"
    NOT_A_SERVER = "not_a_server"  # it answered, but not in the protocol
    CLOSED = "closed"  # it hung up without a word
    REJECTED = "rejected"  # a well-formed refusal (554 greeting, * BYE)
    LOGIN_REFUSED = "login_refused"
    UNREACHABLE = "unreachable"  # DNS or routing
    DENIED = "denied"  # refused by the host policy, before connecting


_TEXT = {
    FailureKind.REFUSED: "connection refused (nothing listens on that port)",
    FailureKind.TIMEOUT: "no answer in time",
    FailureKind.TLS: "TLS failed",
    FailureKind.CLOSED: "the server closed the connection",
    FailureKind.REJECTED: "the server refused the connection",
    FailureKind.LOGIN_REFUSED: "login refused",
    FailureKind.UNREACHABLE: "host not found or unreachable",
    FailureKind.DENIED: "this server address is not allowed",
}


@dataclass(frozen=True)
class ConnectFailure:
    """One failed connection: `protocol` (SMTP, IMAP), the kind, and the remote's own
    words only when they were well-formed (`reply`), or our own `detail`."""

    protocol: str
    host: str
    port: int
    kind: FailureKind
    reply: str | None = None
    detail: str | None = None

    @property
    def message(self) -> str:
        what = _TEXT.get(self.kind) or f"not an {self.protocol} server"
        extra = self.reply or self.detail
        return f"{self.protocol} server {self.host}:{self.port}: {what}" + (
            f": {extra}" if extra else ""
        )


def printable(text: str, limit: int = REPLY_MAX) -> str | None:
    """`text` with line breaks as spaces when all of it is printable ASCII, cut to
    `limit`; None otherwise (binary, control characters)."""
    flat = " ".join(text.split("\n")).replace("\r", "").strip()
    if not flat or not all(" " <= c <= "~" for c in flat):
        return None
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def smtp_reply(code: int, text: str) -> str | None:
    """`"<code> <text>"` for a well-formed SMTP reply, None for anything else."""
    if not 200 <= code <= 599:
        return None
    shown = printable(text)
    return f"{code} {shown}" if shown else str(code)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _os_kind(exc: BaseException) -> FailureKind | None:
    """The kind of the first socket-level cause in `exc`'s chain."""
    for cause in _chain(exc):
        if isinstance(cause, HostDeniedError):
            return FailureKind.DENIED
        if isinstance(cause, ConnectionRefusedError):
            return FailureKind.REFUSED
        if isinstance(cause, ssl.SSLError | ssl.CertificateError):
            return FailureKind.TLS
        if isinstance(cause, socket.gaierror):
            return FailureKind.UNREACHABLE
        if isinstance(cause, TimeoutError):
            return FailureKind.TIMEOUT
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return FailureKind.CLOSED
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE_ERRNOS:
            return FailureKind.UNREACHABLE
    return None


_UNREACHABLE_ERRNOS = frozenset({101, 113, 65, 51})  # ENETUNREACH, EHOSTUNREACH (Linux, BSD)


def _detail(kind: FailureKind, exc: BaseException) -> str | None:
    """Our own words for a refused address or a certificate that is not trusted (what
    OpenSSL found checking it here, not bytes the server chose to send)."""
    for cause in _chain(exc):
        if kind is FailureKind.DENIED and isinstance(cause, HostDeniedError):
            return cause.reason
        if kind is FailureKind.TLS and isinstance(cause, ssl.SSLCertVerificationError):
            reason = printable(str(cause.verify_message or ""), 120)
            return f"certificate not trusted ({reason})" if reason else "certificate not trusted"
    if kind is FailureKind.TLS and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return "certificate not trusted"  # aiosmtplib keeps only the words, not the cause
    return None


def smtp_failure(exc: BaseException, host: str, port: int) -> ConnectFailure:
    """Classify what connecting, TLS or logging in to an SMTP server raised."""

    def failure(kind: FailureKind, reply: str | None = None) -> ConnectFailure:
        return ConnectFailure("SMTP", host, port, kind, reply, _detail(kind, exc))

    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return failure(FailureKind.LOGIN_REFUSED, smtp_reply(exc.code, exc.message))
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return failure(FailureKind.TIMEOUT)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reply = smtp_reply(exc.code, exc.message)
        if reply is None:  # a "malformed response line": whatever it sent, not SMTP
            return failure(FailureKind.NOT_A_SERVER)
        return failure(FailureKind.REJECTED, reply)
    kind = _os_kind(exc)
    if kind is not None:
        return failure(kind)
    text = str(exc)
    if "[SSL" in text:  # aiosmtplib words a handshake failure without keeping the cause
        return failure(FailureKind.TLS)
    if "STARTTLS" in text:
        return ConnectFailure("SMTP", host, port, FailureKind.TLS, None, "no STARTTLS offered")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError):
        return failure(FailureKind.CLOSED)
    return failure(FailureKind.NOT_A_SERVER)


def imap_failure(exc: BaseException, host: str, port: int) -> ConnectFailure:
    """Classify what connecting, TLS or logging in to an IMAP server raised."""

    def failure(kind: FailureKind, reply: str | None = None) -> ConnectFailure:
        return ConnectFailure("IMAP", host, port, kind, reply, _detail(kind, exc))

    if isinstance(exc, ImapAuthError):
        return failure(FailureKind.LOGIN_REFUSED, printable(exc.text))
    if isinstance(exc, ImapTimeoutError):
        return failure(FailureKind.TIMEOUT)
    if isinstance(exc, ImapProtocolError):
        return failure(FailureKind.NOT_A_SERVER)
    if isinstance(exc, ImapRefusedError):
        return failure(FailureKind.REJECTED, printable(exc.text))
    kind = _os_kind(exc)
    if kind is not None:
        return failure(kind)
    if isinstance(exc, ImapConnectionError):
        return failure(FailureKind.CLOSED)
    if isinstance(exc, ImapError):
        if exc.command == "STARTTLS":
            return ConnectFailure("IMAP", host, port, FailureKind.TLS, None, "no STARTTLS offered")
        return failure(FailureKind.REJECTED, printable(exc.text))
    return failure(FailureKind.NOT_A_SERVER)
