"""One SMTP connection to a mailbox's server, reused for many messages.

aiosmtplib connects, negotiates TLS and logs in; then `smtp_wire.ReplyReader` takes over
the transport for the messages (pipelined when the server offers it). A failure is
always known to have happened before or after the data was handed over (smtp_outcomes).
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass, field

import aiosmtplib

from pigeon_common.connect_failure import ConnectFailure, FailureKind, smtp_failure
from pigeon_common.host_policy import ALLOW_ALL, HostPolicy
from pigeon_common.mail_socket import open_mail_socket
from pigeon_common.smtp_outcomes import (
    Outcome,
    Phase,
    Verdict,
    classify_lost_connection,
    classify_reply,
)
from pigeon_common.smtp_wire import Reply, ReplyReader, dot_stuffed

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
    password: str = field(repr=False)  # never in a log line or traceback
    tls_context: ssl.SSLContext | None = None
    timeout: float = 30.0
    policy: HostPolicy = ALLOW_ALL  # which resolved addresses may be connected to


class SmtpConnectError(Exception):
    """The server could not be reached or refused us before any message; `outcome` says
    whether to retry later or pause the campaign (authentication), `failure` what kind of
    failure it was (its message never echoes bytes that are not a well-formed reply)."""

    def __init__(self, outcome: Outcome, failure: ConnectFailure) -> None:
        super().__init__(outcome.reply)
        self.outcome = outcome
        self.failure = failure


def _connect_error(exc: BaseException, e: SmtpEndpoint) -> SmtpConnectError:
    failure = smtp_failure(exc, e.host, e.port)
    if failure.kind is FailureKind.LOGIN_REFUSED:
        code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else 535
        return SmtpConnectError(Outcome(Verdict.AUTH, code, failure.message), failure)
    if failure.kind is FailureKind.REJECTED and isinstance(exc, aiosmtplib.SMTPResponseException):
        return SmtpConnectError(classify_reply(Phase.CONNECT, exc.code, failure.message), failure)
    return SmtpConnectError(classify_lost_connection(Phase.CONNECT, failure.message), failure)


class SmtpSession:
    """A logged-in connection; `send` returns the outcome of one message."""

    def __init__(self, endpoint: SmtpEndpoint) -> None:
        self.endpoint = endpoint
        self._wire: ReplyReader | None = None
        self._pipelining = False

    @property
    def connected(self) -> bool:
        return self._wire is not None and self._wire.lost is None

    async def connect(self) -> None:
        e = self.endpoint
        try:
            # Resolved and checked against the host policy here; aiosmtplib gets the
            # connected socket (and still verifies TLS against the host name).
            sock = await open_mail_socket(e.host, e.port, e.policy, e.timeout)
        except (OSError, TimeoutError) as exc:
            raise _connect_error(exc, e) from None
        client = aiosmtplib.SMTP(
            hostname=e.host,
            sock=sock,
            use_tls=e.security == "tls",
            start_tls=e.security == "starttls",
            tls_context=e.tls_context,
            timeout=e.timeout,
        )
        try:
            await client.connect()
            if e.username:
                await client.login(e.username, e.password)
            elif client.last_ehlo_response is None:
                await client.ehlo()  # login would have sent it; the messages need it
        except (*LOST, aiosmtplib.SMTPException, OSError) as exc:
            await _close(client)
            sock.close()
            raise _connect_error(exc, e) from None
        transport = client.transport
        if transport is None or transport.is_closing():
            closed = ConnectFailure("SMTP", e.host, e.port, FailureKind.CLOSED)
            raise SmtpConnectError(classify_lost_connection(Phase.CONNECT, closed.message), closed)
        wire = ReplyReader()
        wire.transport = transport  # type: ignore[assignment]
        transport.set_protocol(wire)
        self._pipelining = client.supports_extension("pipelining")
        self._wire = wire

    async def send(self, sender: str, recipient: str, raw: bytes) -> Outcome:
        if not self.connected:
            await self.connect()
        wire = self._wire
        assert wire is not None
        timeout = self.endpoint.timeout
        phase = Phase.ENVELOPE
        commands = [
            f"MAIL FROM:<{sender}>\r\n".encode(),
            f"RCPT TO:<{recipient}>\r\n".encode(),
            b"DATA\r\n",
        ]
        try:
            replies = await self._envelope(wire, commands, timeout)
            for reply in replies:
                if reply.code >= 400 or (reply is replies[-1] and reply.code != 354):
                    await self._reset(wire, data_started=replies[-1].code == 354)
                    at = Phase.MAIL if reply is replies[0] else phase
                    return classify_reply(at, reply.code, reply.text)
            phase = Phase.DATA
            wire.write(dot_stuffed(raw))
            (reply,) = await wire.read(1, timeout)
        except (ConnectionError, OSError, TimeoutError) as exc:
            await self.close()
            return classify_lost_connection(phase, str(exc) or type(exc).__name__)
        if reply.code != 250:
            return classify_reply(phase, reply.code, reply.text)
        return Outcome(Verdict.SENT, reply.code, str(reply))

    async def _envelope(
        self, wire: ReplyReader, commands: list[bytes], timeout: float
    ) -> list[Reply]:
        """MAIL, RCPT and DATA: in one write when pipelining, else one at a time up to
        the first refusal."""
        if self._pipelining:
            wire.write(b"".join(commands))
            return await wire.read(len(commands), timeout)
        replies: list[Reply] = []
        for command in commands:
            wire.write(command)
            (reply,) = await wire.read(1, timeout)
            replies.append(reply)
            if reply.code >= 400:
                break
        return replies

    async def _reset(self, wire: ReplyReader, *, data_started: bool) -> None:
        """Back to a clean state after a refused envelope (RSET; an empty message first
        if the server already said 354, which makes it drop the transaction's data)."""
        try:
            if data_started:
                wire.write(b".\r\n")
                await wire.read(1, self.endpoint.timeout)
            wire.write(b"RSET\r\n")
            await wire.read(1, self.endpoint.timeout)
        except (ConnectionError, OSError, TimeoutError):
            await self.close()

    async def close(self) -> None:
        wire, self._wire = self._wire, None
        if wire is None or wire.transport is None:
            return
        with contextlib.suppress(Exception):
            if wire.lost is None:
                wire.write(b"QUIT\r\n")
                await wire.read(1, 5)
        wire.transport.close()


async def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        if client.is_connected:
            await client.quit()
    with contextlib.suppress(Exception):
        client.close()
