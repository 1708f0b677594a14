"""One SMTP connection to a mailbox's server, reused for many messages.

Each message goes MAIL, RCPT, DATA as separate steps so a failure is known to have
happened before or after the data was handed over (see outcomes.py).
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass

import aiosmtplib

from pigeon_common.smtp_outcomes import (
    Outcome,
    Phase,
    Verdict,
    classify_lost_connection,
    classify_reply,
)

LOST = (
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class SmtpEndpoint:
    host: str
    port: int
    security: str  # plain | starttls | tls
    username: str
    password: str
    tls_context: ssl.SSLContext | None = None
    timeout: float = 30.0


class SmtpConnectError(Exception):
    """The server could not be reached or refused us before any message; `outcome` says
    whether to retry later or pause the campaign (authentication)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reply)
        self.outcome = outcome


class SmtpSession:
    """A logged-in connection; `send` returns the outcome of one message."""

    def __init__(self, endpoint: SmtpEndpoint) -> None:
        self.endpoint = endpoint
        self._client: aiosmtplib.SMTP | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def connect(self) -> None:
        e = self.endpoint
        client = aiosmtplib.SMTP(
            hostname=e.host,
            port=e.port,
            use_tls=e.security == "tls",
            start_tls=e.security == "starttls",
            tls_context=e.tls_context,
            timeout=e.timeout,
        )
        try:
            await client.connect()
            if e.username:
                await client.login(e.username, e.password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _close(client)
            raise SmtpConnectError(Outcome(Verdict.AUTH, exc.code, exc.message)) from None
        except aiosmtplib.SMTPResponseException as exc:
            await _close(client)
            raise SmtpConnectError(classify_reply(Phase.CONNECT, exc.code, exc.message)) from None
        except (*LOST, aiosmtplib.SMTPException, OSError) as exc:
            await _close(client)
            raise SmtpConnectError(classify_lost_connection(Phase.CONNECT, str(exc))) from None
        self._client = client

    async def send(self, sender: str, recipient: str, raw: bytes) -> Outcome:
        if self._client is None or not self._client.is_connected:
            await self.connect()
        client = self._client
        assert client is not None
        phase = Phase.ENVELOPE
        try:
            await client.mail(sender)
            await client.rcpt(recipient)
            phase = Phase.DATA
            reply = await client.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            return classify_reply(phase, exc.code, exc.message)
        except (*LOST, aiosmtplib.SMTPException) as exc:
            await self.close()
            return classify_lost_connection(phase, str(exc) or type(exc).__name__)
        return Outcome(Verdict.SENT, reply.code, f"{reply.code} {reply.message}")

    async def _reset(self) -> None:
        if self._client is None:
            return
        try:
            await self._client.rset()
        except (*LOST, aiosmtplib.SMTPException):
            await self.close()

    async def close(self) -> None:
        if self._client is not None:
            await _close(self._client)
            self._client = None


async def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        if client.is_connected:
            await client.quit()
    with contextlib.suppress(Exception):
        client.close()
