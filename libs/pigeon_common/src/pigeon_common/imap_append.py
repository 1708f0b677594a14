"""A small asyncio IMAP client for what the sender needs: log in, find the Sent folder, APPEND.

The sender stores a copy of every message it sends in the mailbox's Sent folder. One APPEND
per round trip caps near 200-300 messages a second, so `append_many` sends a whole batch in
ONE command when the server offers MULTIAPPEND (RFC 3502) and LITERAL+ (RFC 7888): the
messages go out back to back and one tagged answer covers the batch (all or nothing).
Without MULTIAPPEND it pipelines single APPENDs: the batch is written, then the answers are
read. Without LITERAL+ each literal waits for the server's `+`.

The wire format lives in `pigeon_common.imap_protocol` (pure functions); this module only
moves bytes, with a timeout on every read and every write. Errors (all `ImapError`):
`ImapAuthError` when LOGIN is refused, `ImapAppendError` when APPEND is, `ImapConnectionError`
(and `ImapTimeoutError`) when the connection is gone; after that the appender is unusable.

    async with await open_imap(host, 993, "tls", user, password) as imap:
        sent = await imap.find_sent_folder() or "Sent"
        await imap.append_many(sent, raw_messages)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Self, get_args

from pigeon_common.events import Security
from pigeon_common.host_policy import ALLOW_ALL, HostPolicy
from pigeon_common.imap_protocol import (
    SEEN_FLAG,
    SENT_FLAG,
    Arg,
    Capability,
    ImapAppendError,
    ImapAuthError,
    ImapConnectionError,
    ImapError,
    ImapProtocolError,
    ImapRefusedError,
    ImapTimeoutError,
    LiteralArg,
    LiteralMode,
    Mailbox,
    Response,
    ResponseKind,
    ResponseParser,
    Status,
    StringArg,
    capabilities_in,
    encode_command,
    flag_list,
    literal_mode,
    mailbox_argument,
    parse_list,
    parse_search,
    parse_status_items,
    plan_batches,
)
from pigeon_common.mail_socket import open_mail_socket

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "DEFAULT_BATCH_MESSAGES",
    "DEFAULT_TIMEOUT",
    "ImapAppendError",
    "ImapAppender",
    "ImapAuthError",
    "ImapConnectionError",
    "ImapError",
    "ImapProtocolError",
    "ImapTimeoutError",
    "Mailbox",
    "open_imap",
]

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_BATCH_MESSAGES: Final = 100
DEFAULT_BATCH_BYTES: Final = 4 * 1024 * 1024
LOGOUT_TIMEOUT: Final = 5.0
READ_SIZE: Final = 256 * 1024
# Unread server output the stream holds before it stops reading the socket. Pipelined
# commands are all written before their answers are read: with room for every answer the
# server never blocks writing them while this side blocks writing commands.
READ_BUFFER_LIMIT: Final = 64 * 1024 * 1024
TAG_PREFIX: Final = "P"

LIST_RESPONSE: Final = "LIST"
SEARCH_RESPONSE: Final = "SEARCH"
STATUS_RESPONSE: Final = "STATUS"


class ImapAppender:
    """One logged-in IMAP connection (made by `open_imap`). Commands run one operation at a
    time; an operation may pipeline many commands.

    `use_multiappend=False` forces pipelined single APPENDs even where MULTIAPPEND is offered;
    `use_literal_plus=False` forces synchronizing literals (both for tests and odd servers).
    A batch holds at most `batch_messages` messages and `batch_bytes` bytes.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        host: str,
        timeout: float = DEFAULT_TIMEOUT,
        use_multiappend: bool = True,
        use_literal_plus: bool = True,
        batch_messages: int = DEFAULT_BATCH_MESSAGES,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        if batch_messages < 1 or batch_bytes < 1:
            raise ValueError("batch_messages and batch_bytes must be positive")
        self.host = host
        self.timeout = timeout
        self.capabilities: frozenset[str] = frozenset()
        self._reader = reader
        self._writer = writer
        self._use_multiappend = use_multiappend
        self._use_literal_plus = use_literal_plus
        self._batch_messages = batch_messages
        self._batch_bytes = batch_bytes
        self._parser = ResponseParser()
        self._ready: deque[Response] = deque()
        self._tags = itertools.count(1)
        self._lock = asyncio.Lock()
        self._bye: Response | None = None
        self._broken: ImapConnectionError | None = None

    # --- what the sender calls -----------------------------------------------------------

    @property
    def uses_multiappend(self) -> bool:
        """Whether `append_many` sends one APPEND per batch (else one per message)."""
        return self._use_multiappend and Capability.MULTIAPPEND in self.capabilities

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

    async def find_sent_folder(self) -> str | None:
        """The raw name (for commands) of the mailbox flagged `\\Sent`, or None."""
        mailboxes: list[Mailbox] | None = None
        if Capability.SPECIAL_USE in self.capabilities:
            try:
                mailboxes = await self.list_mailboxes(special_use_only=True)
            except ImapConnectionError:
                raise
            except ImapError:
                mailboxes = None  # SPECIAL-USE flags without the LIST selection option
        if mailboxes is None:
            mailboxes = await self.list_mailboxes()
        for mailbox in mailboxes:
            if mailbox.has_flag(SENT_FLAG) and mailbox.selectable:
                return mailbox.raw_name
        return None

    async def append(
        self, folder: str, message: bytes, flags: Sequence[str] = (SEEN_FLAG,)
    ) -> None:
        """APPEND one message; see `append_many`."""
        await self.append_many(folder, [message], flags)

    async def append_many(
        self, folder: str, messages: Sequence[bytes], flags: Sequence[str] = (SEEN_FLAG,)
    ) -> None:
        """Store `messages` (exact bytes, CRLF line endings) in `folder`, in order, each with
        `flags`. `folder` is a raw mailbox name, or a display name when it has non-ASCII
        characters (then encoded to modified UTF-7).

        Batches go one after the other. A refused batch raises `ImapAppendError` (its
        `failed` lists what is not stored); a lost connection raises `ImapConnectionError`
        (its `unconfirmed` lists what may not be stored).
        """
        if not messages:
            return
        mailbox = mailbox_argument(folder)
        flags_arg = flag_list(flags)
        sizes = [len(m) for m in messages]
        for batch in plan_batches(sizes, self._batch_messages, self._batch_bytes):
            if self.uses_multiappend:
                args: list[Arg] = ["APPEND", mailbox]
                for index in batch:
                    args += [flags_arg, LiteralArg(messages[index])]
                commands = [args]
            else:
                commands = [["APPEND", mailbox, flags_arg, LiteralArg(messages[i])] for i in batch]
            try:
                answers, _ = await self._exchange(commands)
            except ImapConnectionError as error:
                error.unconfirmed = tuple(range(batch.start, len(messages)))
                raise
            if self.uses_multiappend:
                refused = [(i, answers[0]) for i in batch] if not answers[0].is_tagged_ok() else []
            else:
                refused = [
                    (i, a) for i, a in zip(batch, answers, strict=True) if not a.is_tagged_ok()
                ]
            if refused:
                answer = refused[0][1]
                failed = [i for i, _ in refused] + list(range(batch.stop, len(messages)))
                raise ImapAppendError(answer.code, answer.text, failed=failed, status=answer.name)

    async def contains_message_id(self, folder: str, message_id: str) -> bool:
        """Whether `folder` holds a message whose Message-ID header contains `message_id`
        (EXAMINE, then `UID SEARCH HEADER Message-ID`)."""
        if not message_id or any(c in message_id for c in "\r\n\0"):
            raise ValueError(f"not a Message-ID: {message_id!r}")
        await self._command("EXAMINE", mailbox_argument(folder))
        search: list[Arg] = ["UID SEARCH"]
        if not message_id.isascii():
            search.append("CHARSET UTF-8")
        search += ["HEADER", StringArg(b"Message-ID"), StringArg(message_id.encode())]
        _, untagged = await self._command(*search)
        uids = [uid for r in untagged if r.name == SEARCH_RESPONSE for uid in parse_search(r)]
        if Capability.UNSELECT in self.capabilities:
            await self._command("UNSELECT")
        return bool(uids)

    async def uid_position(self, folder: str) -> tuple[int, int]:
        """`folder`'s (UIDVALIDITY, UIDNEXT) by STATUS: what is appended from now on gets a
        UID at or above that UIDNEXT."""
        _, untagged = await self._command(
            "STATUS", mailbox_argument(folder), "(UIDVALIDITY UIDNEXT)"
        )
        for response in untagged:
            if response.name == STATUS_RESPONSE:
                items = parse_status_items(response)
                if "UIDVALIDITY" in items and "UIDNEXT" in items:
                    return items["UIDVALIDITY"], items["UIDNEXT"]
        raise ImapError(None, f"{self.host} gave no UIDNEXT for {folder}", command="STATUS")

    async def uids_with_message_ids(
        self,
        folder: str,
        message_ids: Sequence[str],
        within: tuple[int, int | None] | None = None,
    ) -> set[int]:
        """UIDs of the messages in `folder` whose Message-ID header carries any of
        `message_ids`, optionally only among UIDs `within` (low, high; high None: no
        bound): one `UID SEARCH [UID low:high] OR HEADER ... HEADER ...` however many ids
        (a header search reads every message it considers, so one search instead of one
        per id, and a UID range keeps it small)."""
        if not message_ids:
            return set()
        for message_id in message_ids:
            if not message_id or any(c in message_id for c in "\r\n\0"):
                raise ValueError(f"not a Message-ID: {message_id!r}")
        await self._command("EXAMINE", mailbox_argument(folder))
        search: list[Arg] = ["UID SEARCH"]
        if not all(m.isascii() for m in message_ids):
            search.append("CHARSET UTF-8")
        if within is not None:
            low, high = within
            search += ["UID", f"{low}:{'*' if high is None else high}"]
        search += ["OR"] * (len(message_ids) - 1)
        for message_id in message_ids:
            search += ["HEADER", StringArg(b"Message-ID"), StringArg(message_id.encode())]
        _, untagged = await self._command(*search)
        uids = {uid for r in untagged if r.name == SEARCH_RESPONSE for uid in parse_search(r)}
        if Capability.UNSELECT in self.capabilities:
            await self._command("UNSELECT")
        return uids

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


async def open_imap(
    host: str,
    port: int,
    security: Security,
    username: str,
    password: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    use_multiappend: bool = True,
    use_literal_plus: bool = True,
    batch_messages: int = DEFAULT_BATCH_MESSAGES,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    client_class: type[ImapAppender] | None = None,
    policy: HostPolicy = ALLOW_ALL,
) -> ImapAppender:
    """Connect (`security`: plain, starttls or tls), log in and learn the capabilities.
    The server's resolved addresses are checked against `policy` first.

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
    appender = (client_class or ImapAppender)(
        reader,
        writer,
        host=host,
        timeout=timeout,
        use_multiappend=use_multiappend,
        use_literal_plus=use_literal_plus,
        batch_messages=batch_messages,
        batch_bytes=batch_bytes,
    )
    try:
        await appender._open(security, username, password, context)
    except BaseException:
        appender._abort(ImapConnectionError("the connection was not opened"))
        raise
    return appender
