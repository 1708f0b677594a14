"""An asyncio IMAP client: connect, log in, run commands. What the sender and imap-sync share.

`open_imap` resolves the host (every address checked against the host policy), connects
(plain, STARTTLS or implicit TLS), reads the greeting, logs in and learns the
capabilities. The `ImapClient` it returns runs one operation at a time (an operation may
pipeline many commands), with a timeout on every read and every write.

The wire format lives in `pigeon_common.imap_protocol` (pure functions); this module only
moves bytes. Errors (all `ImapError`): `ImapAuthError` when LOGIN is refused,
`ImapConnectionError` (and `ImapTimeoutError`) when the connection is gone; after that the
client is unusable. What one service alone does lives in that service, on a subclass:
APPEND of Sent copies in `pigeon_sender.appender`, reading a folder by UID and IDLE in
`pigeon_imap_sync.folder_reader`. The API's test connection uses this client as it is.

    async with await open_imap(host, 993, "tls", user, password) as imap:
        folders = await imap.list_mailboxes()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Protocol, Self, get_args

from pigeon_common.events import Security
from pigeon_common.host_policy import ALLOW_ALL, HostPolicy
from pigeon_common.imap_protocol import (
    Arg,
    Capability,
    ImapAuthError,
    ImapConnectionError,
    ImapError,
    ImapProtocolError,
    ImapRefusedError,
    ImapTimeoutError,
    LiteralMode,
    Mailbox,
    Response,
    ResponseKind,
    ResponseParser,
    Status,
    StringArg,
    capabilities_in,
    encode_command,
    literal_mode,
    parse_list,
)
from pigeon_common.mail_socket import open_mail_socket

DEFAULT_TIMEOUT: Final = 30.0
LOGOUT_TIMEOUT: Final = 5.0
READ_SIZE: Final = 256 * 1024
# Unread server output the stream holds before it stops reading the socket. Pipelined
# commands are all written before their answers are read: with room for every answer the
# server never blocks writing them while this side blocks writing commands.
READ_BUFFER_LIMIT: Final = 64 * 1024 * 1024
TAG_PREFIX: Final = "P"

LIST_RESPONSE: Final = "LIST"


class ImapClient:
    """One logged-in IMAP connection (made by `open_imap`). Commands run one operation at a
    time; an operation may pipeline many commands.

    `use_literal_plus=False` forces synchronizing literals (for tests and odd servers).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        host: str,
        timeout: float = DEFAULT_TIMEOUT,
        use_literal_plus: bool = True,
    ) -> None:
        self.host = host
        self.timeout = timeout
        self.capabilities: frozenset[str] = frozenset()
        self._reader = reader
        self._writer = writer
        self._use_literal_plus = use_literal_plus
        self._parser = ResponseParser()
        self._ready: deque[Response] = deque()
        self._tags = itertools.count(1)
        self._lock = asyncio.Lock()
        self._bye: Response | None = None
        self._broken: ImapConnectionError | None = None

    @property
    def closed(self) -> bool:
        return self._broken is not None

    async def list_mailboxes(self, *, special_use_only: bool = False) -> list[Mailbox]:
        """`LIST "" "*"`, or only the special-use mailboxes (RFC 6154 selection option)."""
        args: list[Arg] = ["LIST"]
        if special_use_only:
            args.append("(SPECIAL-USE)")
        args += [StringArg(b""), StringArg(b"*")]
        _, untagged = await self._command(*args)
        return [parse_list(r) for r in untagged if r.name == LIST_RESPONSE]

    async def close(self) -> None:
        """LOGOUT and close; a connection that is already dead is just closed."""
        if self._broken is None:
            self.timeout = min(self.timeout, LOGOUT_TIMEOUT)
            with contextlib.suppress(ImapError):
                await self._exchange([["LOGOUT"]])
            self._broken = self._broken or ImapConnectionError("the connection is closed")
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(LOGOUT_TIMEOUT):
                await self._writer.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- connecting ----------------------------------------------------------------------

    async def _open(
        self, security: Security, username: str, password: str, context: ssl.SSLContext | None
    ) -> None:
        """Greeting, STARTTLS when asked for, LOGIN, capabilities."""
        greeting = await self._next_response()
        if greeting.kind is not ResponseKind.UNTAGGED or greeting.name not in (
            Status.OK,
            Status.PREAUTH,
        ):
            raise ImapRefusedError(f"{greeting.name} {greeting.text}", code=greeting.code)
        self.capabilities = capabilities_in(greeting) or frozenset()
        if not self.capabilities:
            await self._refresh_capabilities()
        if security == "starttls":
            if greeting.name == Status.PREAUTH:
                raise ImapConnectionError(f"{self.host} sent PREAUTH: STARTTLS is impossible")
            assert context is not None
            await self._starttls(context)
        if greeting.name != Status.PREAUTH:
            await self._login(username, password)

    async def _starttls(self, context: ssl.SSLContext) -> None:
        if Capability.STARTTLS not in self.capabilities:
            raise ImapError(None, f"{self.host} does not offer STARTTLS", command="STARTTLS")
        await self._command("STARTTLS")
        if self._ready or self._parser.pending:
            raise ImapProtocolError("the server sent data after its STARTTLS answer")
        try:
            async with asyncio.timeout(self.timeout):
                await self._writer.start_tls(context, server_hostname=self.host)
        except TimeoutError:
            raise ImapTimeoutError(f"TLS handshake with {self.host} timed out") from None
        except OSError as error:  # ssl.SSLError included (kept as the cause, to classify)
            raise ImapConnectionError(f"TLS handshake with {self.host} failed: {error}") from error
        await self._refresh_capabilities()

    async def _login(self, username: str, password: str) -> None:
        if Capability.LOGINDISABLED in self.capabilities:
            raise ImapAuthError(
                None,
                f"{self.host} disables LOGIN on this connection: use starttls or tls",
                command="LOGIN",
            )
        tagged, untagged = await self._command(
            "LOGIN",
            StringArg(username.encode()),
            StringArg(password.encode()),
            error=ImapAuthError,
        )
        announced = [c for r in (*untagged, tagged) if (c := capabilities_in(r)) is not None]
        if announced:
            self.capabilities = announced[-1]
        else:
            await self._refresh_capabilities()

    async def _refresh_capabilities(self) -> None:
        tagged, untagged = await self._command("CAPABILITY")
        announced = [c for r in (*untagged, tagged) if (c := capabilities_in(r)) is not None]
        self.capabilities = announced[-1] if announced else frozenset()

    # --- commands ------------------------------------------------------------------------

    @property
    def _literal_mode(self) -> LiteralMode:
        if not self._use_literal_plus:
            return LiteralMode.SYNC
        return literal_mode(self.capabilities)

    async def _command(
        self, *args: Arg, error: type[ImapError] = ImapError
    ) -> tuple[Response, list[Response]]:
        """Run one command; its tagged OK and the untagged responses, or `error` for NO/BAD."""
        [tagged], untagged = await self._exchange([args])
        if not tagged.is_tagged_ok():
            raise tagged.to_error(str(args[0]), error)
        return tagged, untagged

    async def _exchange(
        self, commands: Sequence[Sequence[Arg]]
    ) -> tuple[list[Response], list[Response]]:
        """Send `commands` pipelined; their tagged answers in order, and untagged responses.

        Any failure in here (and cancellation) leaves the stream in an unknown state, so the
        connection is dropped and every later call raises `ImapConnectionError`.
        """
        async with self._lock:
            if self._broken is not None:
                raise ImapConnectionError(f"IMAP connection to {self.host} is closed") from (
                    self._broken
                )
            mode = self._literal_mode
            tags = [f"{TAG_PREFIX}{next(self._tags)}" for _ in commands]
            encoded = [encode_command(t, c, mode) for t, c in zip(tags, commands, strict=True)]
            try:
                return await self._send_and_collect(tags, encoded)
            except ImapConnectionError as error:
                self._abort(error)
                raise
            except BaseException:
                self._abort(ImapConnectionError("an IMAP exchange was interrupted"))
                raise

    async def _send_and_collect(
        self, tags: list[str], encoded: list[list[bytes]]
    ) -> tuple[list[Response], list[Response]]:
        tagged: dict[str, Response] = {}
        untagged: list[Response] = []
        expected = set(tags)
        for tag, segments in zip(tags, encoded, strict=True):
            self._writer.write(segments[0])
            for segment in segments[1:]:  # synchronizing literals: wait for `+` before each
                await self._drain()
                if not await self._await_continuation(tag, expected, tagged, untagged):
                    break  # refused before its literal; the tagged answer is in
                self._writer.write(segment)
        await self._drain()
        while len(tagged) < len(tags):
            self._route(await self._next_response(), expected, tagged, untagged)
        return [tagged[t] for t in tags], untagged

    async def _await_continuation(
        self,
        tag: str,
        expected: set[str],
        tagged: dict[str, Response],
        untagged: list[Response],
    ) -> bool:
        """Read until the server asks for the literal (True) or answers command `tag` (False)."""
        while True:
            response = await self._next_response()
            if response.kind is ResponseKind.CONTINUATION:
                return True
            self._route(response, expected, tagged, untagged)
            if tag in tagged:
                return False

    def _route(
        self,
        response: Response,
        expected: set[str],
        tagged: dict[str, Response],
        untagged: list[Response],
    ) -> None:
        if response.kind is ResponseKind.TAGGED:
            if response.tag not in expected:
                raise ImapProtocolError(f"answer for a command never sent: {response.tag}")
            tagged[response.tag] = response
        elif response.kind is ResponseKind.UNTAGGED:
            if response.name == Status.BYE:
                self._bye = response
            untagged.append(response)
        else:
            raise ImapProtocolError(f"unexpected continuation request: {response.text}")

    # --- bytes ---------------------------------------------------------------------------

    async def _next_response(self) -> Response:
        while not self._ready:
            try:
                async with asyncio.timeout(self.timeout):
                    data = await self._reader.read(READ_SIZE)
            except TimeoutError:
                raise ImapTimeoutError(
                    f"no answer from {self.host} within {self.timeout} s"
                ) from None
            except OSError as error:
                raise self._lost(str(error)) from error
            if not data:
                raise self._lost("connection closed by the server")
            self._ready.extend(self._parser.feed(data))
        return self._ready.popleft()

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._writer.drain()
        except TimeoutError:
            raise ImapTimeoutError(
                f"{self.host} accepted no data within {self.timeout} s"
            ) from None
        except OSError as error:
            raise self._lost(str(error)) from error

    def _lost(self, reason: str) -> ImapConnectionError:
        if self._bye is not None:
            bye = f"[{self._bye.code}] {self._bye.text}" if self._bye.code else self._bye.text
            return ImapConnectionError(f"{reason} ({self.host}): BYE {bye}", code=self._bye.code)
        return ImapConnectionError(f"{reason} ({self.host})")

    def _abort(self, error: ImapConnectionError) -> None:
        self._broken = error
        self._writer.transport.abort()


class ClientFactory(Protocol):
    """Makes the client for a connected stream: `ImapClient` itself, or a subclass with its
    own options bound (`functools.partial`)."""

    def __call__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        host: str,
        timeout: float,
        use_literal_plus: bool,
    ) -> ImapClient: ...


async def open_imap(
    host: str,
    port: int,
    security: Security,
    username: str,
    password: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    use_literal_plus: bool = True,
    policy: HostPolicy = ALLOW_ALL,
    client: ClientFactory = ImapClient,
) -> ImapClient:
    """Connect (`security`: plain, starttls or tls), log in and learn the capabilities.
    The server's resolved addresses are checked against `policy` first. `client` makes
    the connection's object (a service's subclass adds its own commands).

    `timeout` bounds connecting and every later read and write. Raises `ImapAuthError` when
    LOGIN is refused, `ImapConnectionError` when the server cannot be reached or hangs up.
    """
    if security not in get_args(Security):
        raise ValueError(f"security must be one of {get_args(Security)}, not {security!r}")
    context = None
    if security != "plain":
        context = ssl_context or ssl.create_default_context()
    try:
        async with asyncio.timeout(timeout):
            sock = await open_mail_socket(host, port, policy, timeout)
            reader, writer = await asyncio.open_connection(
                sock=sock,
                ssl=context if security == "tls" else None,
                server_hostname=host if security == "tls" else None,
                limit=READ_BUFFER_LIMIT,
            )
    except TimeoutError:
        raise ImapTimeoutError(f"connecting to {host}:{port} timed out after {timeout} s") from None
    except OSError as error:
        raise ImapConnectionError(f"cannot connect to {host}:{port}: {error}") from error
    try:
        imap = client(reader, writer, host=host, timeout=timeout, use_literal_plus=use_literal_plus)
    except BaseException:
        writer.transport.abort()  # options the client refuses: nothing is left open
        raise
    try:
        await imap._open(security, username, password, context)
    except BaseException:
        imap._abort(ImapConnectionError("the connection was not opened"))
        raise
    return imap
