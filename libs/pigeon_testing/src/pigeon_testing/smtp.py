"""A recording SMTP server for tests (aiosmtpd in its own thread) with fault injection.

`SmtpTestServer` listens on 127.0.0.1 on a free port, offers AUTH PLAIN/LOGIN and STARTTLS
(self-signed certificate made at start; `tls_context` trusts it) or implicit TLS, and keeps
every transaction it accepted. A message counts as received only when the server decided to
answer 250 to DATA: it is recorded just before that reply is written, so a client that has
read the 250 always finds it in `messages`, and a faulted or dropped DATA records nothing.

Faults can be set and reset from any thread at any time:
`fail(stage, code)`, `disconnect_during_data()`, `stall(stage, seconds)`, `reset_faults()`.

Use as a pytest plugin (`-p pigeon_testing.smtp` or `pytest_plugins`): fixtures `smtp_server`
(session) and `smtp` (per test, cleared).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import itertools
import logging
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pigeon_embedded.ports import LOOPBACK

DEFAULT_USERNAME: Final = "pigeon"
DEFAULT_PASSWORD: Final = "secret"  # noqa: S105 - a throwaway test server's login
SERVER_NAME: Final = "localhost"
CERT_FILE_NAME: Final = "cert.pem"
KEY_FILE_NAME: Final = "key.pem"
CERT_VALIDITY: Final = datetime.timedelta(days=2)
WAIT_TIMEOUT: Final = 5.0
POLL_INTERVAL: Final = 0.01

REPLY_OK: Final = "250 OK"
REPLY_DROPPED: Final = "421 4.4.2 Connection dropped (injected)"
MIN_FAULT_CODE: Final = 400
PERMANENT_FAULT_CODE: Final = 500
MAX_FAULT_CODE: Final = 599


AIOSMTPD_LOGGER: Final = "mail.log"


class _DropLoginDataDeprecation(logging.Filter):
    """aiosmtpd 1.4 logs "Session.login_data is deprecated" on every successful AUTH (from
    its own code, not ours); this filter drops just that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


_LOGIN_DATA_FILTER: Final = _DropLoginDataDeprecation()


class Stage(StrEnum):
    """The SMTP command a fault applies to."""

    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


@dataclass(frozen=True)
class ReceivedMessage:
    """One transaction the server accepted (answered 250 to DATA)."""

    connection_id: int
    """Numbers the connections (1, 2, ...); transactions on one connection share it."""
    mail_from: str
    rcpt_tos: tuple[str, ...]
    """The accepted recipients, in RCPT order."""
    data: bytes
    """The message as received after DATA, dot-unstuffed, with its CRLF line endings."""
    auth_user: str | None
    """The AUTH login of the session, None when the client did not authenticate."""
    tls: bool
    """True when the transaction ran over TLS (STARTTLS or implicit TLS)."""
    mail_options: tuple[str, ...] = ()
    received_at: float = field(default_factory=time.time)


@dataclass
class _Fault:
    """One injected fault; `remaining` counts the commands it still hits (None: until reset)."""

    stage: Stage
    remaining: int | None
    reply: str | None = None
    stall_seconds: float = 0.0
    disconnect: bool = False
    recipients: frozenset[str] | None = None

    def matches(self, stage: Stage, addresses: Iterable[str]) -> bool:
        if self.stage is not stage:
            return False
        if self.recipients is None:
            return True
        return any(a.casefold() in self.recipients for a in addresses)


def _check_times(times: int | None) -> None:
    if times is not None and times < 1:
        raise ValueError("times must be >= 1, or None for every command until reset")


class SmtpTestServer:
    """A threaded aiosmtpd server that records transactions and fails on request.

    `auth_require_tls=False` (the default here, unlike aiosmtpd) allows AUTH on a plain
    connection; `auth_required=True` refuses MAIL before AUTH. With `implicit_tls=True` the
    socket speaks TLS from the first byte (SMTPS) and STARTTLS is not offered.
    """

    def __init__(
        self,
        *,
        username: str | None = DEFAULT_USERNAME,
        password: str | None = DEFAULT_PASSWORD,
        auth_required: bool = False,
        auth_require_tls: bool = False,
        implicit_tls: bool = False,
        require_starttls: bool = False,
        pipelining: bool = False,
    ) -> None:
        self.host = LOOPBACK
        self.port = 0
        self.username = username
        self.password = password
        self.auth_required = auth_required
        self.auth_require_tls = auth_require_tls
        self.implicit_tls = implicit_tls
        self.require_starttls = require_starttls
        # aiosmtpd reads commands one line at a time, so pipelined commands (RFC 2920)
        # work, but it answers them about 45 ms late each: it is off by default, on for
        # the tests of the pipelined path.
        self.pipelining = pipelining
        self._lock = threading.Condition()
        self._messages: list[ReceivedMessage] = []
        self._faults: list[_Fault] = []
        # Every AUTH a client tried, as (login, password): what went over the wire.
        self.auth_attempts: list[tuple[str, str]] = []
        self._connection_ids = itertools.count(1)
        self._cert_dir: Path | None = None
        self._controller: _Controller | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Make a certificate, bind 127.0.0.1 on a free port and serve from a new thread."""
        if self._controller is not None:
            raise RuntimeError("SMTP test server already started")
        logging.getLogger(AIOSMTPD_LOGGER).addFilter(_LOGIN_DATA_FILTER)  # once: same object
        self._cert_dir = Path(tempfile.mkdtemp(prefix="pigeon-smtp-"))
        _write_self_signed_cert(self._cert_dir)
        server_tls = self._server_tls_context()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        controller = _Controller(
            _RecordingHandler(self),
            sock=sock,
            next_connection_id=lambda: next(self._connection_ids),
            hostname=self.host,
            port=self.port,
            ssl_context=server_tls if self.implicit_tls else None,
            server_hostname=SERVER_NAME,
            tls_context=None if self.implicit_tls else server_tls,
            require_starttls=self.require_starttls and not self.implicit_tls,
            auth_required=self.auth_required,
            auth_require_tls=self.auth_require_tls,
            authenticator=self._authenticate,
        )
        try:
            controller.start()
        except BaseException:
            sock.close()
            shutil.rmtree(self._cert_dir, ignore_errors=True)
            raise
        self._controller = controller

    def stop(self) -> None:
        """Stop the server thread (dropping open connections) and remove the certificate."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
        if self._cert_dir is not None:
            shutil.rmtree(self._cert_dir, ignore_errors=True)
            self._cert_dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- TLS ---------------------------------------------------------------------------------

    @property
    def cert_path(self) -> Path:
        """The PEM certificate of the running server (self-signed, for localhost/127.0.0.1)."""
        if self._cert_dir is None:
            raise RuntimeError("SMTP test server not started")
        return self._cert_dir / CERT_FILE_NAME

    @property
    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and checks the host)."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    def _server_tls_context(self) -> ssl.SSLContext:
        assert self._cert_dir is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert_dir / CERT_FILE_NAME, self._cert_dir / KEY_FILE_NAME)
        return context

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            with self._lock:
                self.auth_attempts.append(
                    (
                        auth_data.login.decode("utf-8", "replace"),
                        auth_data.password.decode("utf-8", "replace"),
                    )
                )
        ok = (
            self.username is not None
            and isinstance(auth_data, LoginPassword)
            and auth_data.login.decode("utf-8", "replace") == self.username
            and auth_data.password.decode("utf-8", "replace") == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    # --- recorded mail -----------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of every accepted transaction, oldest first."""
        with self._lock:
            return list(self._messages)

    def recipients(self) -> list[str]:
        """Every accepted recipient of every accepted message, duplicates kept."""
        return [rcpt for message in self.messages for rcpt in message.rcpt_tos]

    def wait_for(self, count: int, timeout: float = WAIT_TIMEOUT) -> list[ReceivedMessage]:
        """Block until at least `count` messages were received; TimeoutError otherwise."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"{len(self._messages)} of {count} messages received within {timeout} s"
                )
            return list(self._messages)

    async def wait_for_async(self, count: int) -> list[ReceivedMessage]:
        """`wait_for` for async tests, without blocking the event loop.

        Waits as long as it takes: bound it with `asyncio.timeout(...)`.
        """
        while True:
            messages = self.messages
            if len(messages) >= count:
                return messages
            await asyncio.sleep(POLL_INTERVAL)

    def clear(self) -> None:
        """Forget the recorded messages."""
        with self._lock:
            self._messages.clear()

    def _record(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(message)
            self._lock.notify_all()

    # --- faults ------------------------------------------------------------------------------

    def fail(
        self,
        stage: Stage | str,
        code: int,
        text: str | None = None,
        *,
        times: int | None = 1,
        recipients: Iterable[str] | None = None,
    ) -> None:
        """Answer `code text` instead of accepting, at `stage` ("mail", "rcpt" or "data").

        Hits the next `times` commands at that stage (None: every one until reset). With
        `recipients` it hits only those addresses: at "rcpt" the RCPT of such an address, at
        "data" a transaction that has one of them among its recipients.
        """
        stage = Stage(stage)
        _check_times(times)
        if not MIN_FAULT_CODE <= code <= MAX_FAULT_CODE:
            raise ValueError(f"fault code {code} is not a 4xx or 5xx reply")
        targets = None if recipients is None else frozenset(r.casefold() for r in recipients)
        if targets is not None and stage is Stage.MAIL:
            raise ValueError("recipients apply to the 'rcpt' and 'data' stages only")
        reply = f"{code} {text or _default_text(code)}"
        self._add_fault(_Fault(stage, times, reply=reply, recipients=targets))

    def disconnect_during_data(self, *, times: int | None = 1) -> None:
        """Close the connection without a reply once the message data has been read."""
        _check_times(times)
        self._add_fault(_Fault(Stage.DATA, times, disconnect=True))

    def stall(self, stage: Stage | str, seconds: float, *, times: int | None = 1) -> None:
        """Sleep `seconds` before answering the next `times` commands at `stage`.

        A client that gives up meanwhile gets nothing recorded; one that waits gets the
        normal answer afterwards.
        """
        _check_times(times)
        if seconds <= 0:
            raise ValueError("seconds must be > 0")
        self._add_fault(_Fault(Stage(stage), times, stall_seconds=seconds))

    def reset_faults(self) -> None:
        """Remove every fault: the server accepts everything again."""
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_faults(self, stage: Stage, addresses: Iterable[str]) -> list[_Fault]:
        """The faults hitting this command (first stall, disconnect, reply of each kind)."""
        addresses = list(addresses)
        taken: list[_Fault] = []
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(stage, addresses):
                    continue
                if any(_kind(t) == _kind(fault) for t in taken):
                    continue
                taken.append(fault)
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
        return sorted(taken, key=_kind)


def _kind(fault: _Fault) -> int:
    """The order faults of one command run in: stall, then disconnect, then reply."""
    if fault.stall_seconds:
        return 0
    return 1 if fault.disconnect else 2


def _default_text(code: int) -> str:
    if code < PERMANENT_FAULT_CODE:
        return "4.3.0 Temporary failure (injected)"
    return "5.7.1 Permanent failure (injected)"


class _RecordingSMTP(SMTP):
    """aiosmtpd's SMTP protocol (one per connection), numbered for `connection_id`.

    aiosmtpd counts only STARTTLS as TLS for its AUTH rules: on an implicit-TLS socket it
    would refuse AUTH under `auth_require_tls`, and warn that `auth_required` without
    `auth_require_tls` is unsafe. `implicit_tls` turns both off and requires AUTH itself.
    """

    def __init__(
        self,
        handler: Any,
        *,
        connection_id: int,
        implicit_tls: bool,
        auth_required: bool,
        auth_require_tls: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            handler,
            auth_required=auth_required and not implicit_tls,
            auth_require_tls=auth_require_tls and not implicit_tls,
            **kwargs,
        )
        self._auth_required = auth_required
        self.connection_id = connection_id


class _Controller(Controller):
    """A Controller that serves on a socket bound beforehand (port 0, so no race)."""

    def __init__(
        self,
        handler: Any,
        *,
        sock: socket.socket,
        next_connection_id: Callable[[], int],
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._sock = sock
        self._next_connection_id = next_connection_id

    def factory(self) -> SMTP:
        return _RecordingSMTP(
            self.handler,
            connection_id=self._next_connection_id(),
            implicit_tls=self.ssl_context is not None,
            **self.SMTP_kwargs,
        )

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


class _RecordingHandler:
    """aiosmtpd hooks. aiosmtpd treats every `handle_*` as a hook and every `auth_*` as an
    AUTH mechanism, so this class has no other public names."""

    def __init__(self, owner: SmtpTestServer) -> None:
        self._owner = owner

    async def _apply(self, server: SMTP, stage: Stage, addresses: Iterable[str]) -> str | None:
        """Run the faults for this command; the reply to give instead of the normal one."""
        reply: str | None = None
        for fault in self._owner._take_faults(stage, addresses):
            if fault.stall_seconds:
                await asyncio.sleep(fault.stall_seconds)
            elif fault.disconnect:
                transport = server.transport
                if isinstance(transport, asyncio.Transport):
                    transport.abort()  # no FIN handshake, nothing flushed
                elif transport is not None:
                    transport.close()
                return REPLY_DROPPED  # written to a closed transport: the client sees nothing
            else:
                reply = fault.reply
        return reply

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self._owner.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        reply = await self._apply(server, Stage.MAIL, ())
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return REPLY_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = await self._apply(server, Stage.RCPT, (address,))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return REPLY_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await self._apply(server, Stage.DATA, envelope.rcpt_tos)
        if reply is not None:
            return reply
        transport = server.transport
        if transport is None or transport.is_closing():
            return REPLY_DROPPED  # the client left while we stalled: not received
        auth = session.auth_data if session.authenticated else None
        self._owner._record(
            ReceivedMessage(
                connection_id=getattr(server, "connection_id", 0),
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=envelope.original_content or b"",
                auth_user=auth.login.decode("utf-8", "replace")
                if isinstance(auth, LoginPassword)
                else None,
                tls=transport.get_extra_info("ssl_object") is not None,
                mail_options=tuple(envelope.mail_options),
            )
        )
        return REPLY_OK


def _write_self_signed_cert(folder: Path) -> None:
    """A P-256 key and a self-signed certificate for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / CERT_FILE_NAME).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = folder / KEY_FILE_NAME
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


# --- pytest fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpTestServer]:
    """One SMTP test server for the session: AUTH (pigeon/secret) allowed without TLS,
    STARTTLS offered, nothing required."""
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def smtp(smtp_server: SmtpTestServer) -> Iterator[SmtpTestServer]:
    """The session's SMTP server with no messages and no faults left from earlier tests."""
    smtp_server.reset_faults()
    smtp_server.clear()
    yield smtp_server
    smtp_server.reset_faults()
