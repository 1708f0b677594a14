"""Copies of sent messages into the mailbox's Sent folder over IMAP: the sender's APPEND.

The sender stores a copy of every message it sends in the mailbox's Sent folder. One APPEND
per round trip caps near 200-300 messages a second, so `append_many` sends a whole batch in
ONE command when the server offers MULTIAPPEND (RFC 3502) and LITERAL+ (RFC 7888): the
messages go out back to back and one tagged answer covers the batch (all or nothing).
Without MULTIAPPEND it pipelines single APPENDs: the batch is written, then the answers are
read. Without LITERAL+ each literal waits for the server's `+`. It also finds the Sent
folder and the copies already there (by Message-ID), for a takeover that must not file one
twice (`pigeon_sender.mailcopy`).

Connecting, logging in and running commands is the shared `pigeon_common.imap_client`;
`ImapAppendError` is raised when APPEND is refused, the client's errors otherwise.

    async with await open_appender(host, 993, "tls", user, password) as imap:
        sent = await imap.find_sent_folder() or "Sent"
        await imap.append_many(sent, raw_messages)
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Iterable, Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Final

from pigeon_common.events import Security
from pigeon_common.host_policy import ALLOW_ALL, HostPolicy
from pigeon_common.imap_client import DEFAULT_TIMEOUT, ImapClient, open_imap
from pigeon_common.imap_protocol import (
    SEEN_FLAG,
    SENT_FLAG,
    Arg,
    Capability,
    ImapConnectionError,
    ImapError,
    LiteralArg,
    Mailbox,
    Status,
    StringArg,
    flag_list,
    mailbox_argument,
    parse_search,
    parse_status_items,
    plan_batches,
)

DEFAULT_BATCH_MESSAGES: Final = 100
DEFAULT_BATCH_BYTES: Final = 4 * 1024 * 1024
SEARCH_RESPONSE: Final = "SEARCH"
STATUS_RESPONSE: Final = "STATUS"
FETCH_RESPONSE: Final = "FETCH"
FETCH_UIDS: Final = 500  # UIDs per FETCH: a bounded command line and response
MESSAGE_ID_FIELD: Final = "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"


def header_message_ids(blocks: Iterable[bytes]) -> set[str]:
    """The Message-ID values (with their angle brackets) of header blocks as FETCH
    `BODY[HEADER.FIELDS (MESSAGE-ID)]` returns them."""
    parser = BytesHeaderParser(policy=compat32)
    found: set[str] = set()
    for block in blocks:
        for value in parser.parsebytes(block).get_all("Message-ID", []):
            found.add("".join(str(value).split()))  # unfolded: no whitespace in our ids
    return found


class ImapAppendError(ImapError):
    """APPEND was refused for some messages of an `append_many` call.

    `failed` holds the indices (into the messages given) that are not stored: the refused
    batch (a MULTIAPPEND is all or nothing), or the refused single APPENDs, plus every message
    of the batches not attempted after it. All other messages are stored.
    """

    def __init__(
        self,
        code: str | None,
        text: str,
        *,
        failed: Sequence[int],
        status: str = Status.NO,
        command: str = "APPEND",
    ) -> None:
        super().__init__(code, text, status=status, command=command)
        self.failed = tuple(failed)


class ImapAppender(ImapClient):
    """A logged-in connection that files copies (made by `open_appender`).

    `use_multiappend=False` forces pipelined single APPENDs even where MULTIAPPEND is offered
    (for tests and odd servers). A batch holds at most `batch_messages` messages and
    `batch_bytes` bytes.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        host: str,
        timeout: float = DEFAULT_TIMEOUT,
        use_literal_plus: bool = True,
        use_multiappend: bool = True,
        batch_messages: int = DEFAULT_BATCH_MESSAGES,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        if batch_messages < 1 or batch_bytes < 1:
            raise ValueError("batch_messages and batch_bytes must be positive")
        super().__init__(
            reader, writer, host=host, timeout=timeout, use_literal_plus=use_literal_plus
        )
        self._use_multiappend = use_multiappend
        self._batch_messages = batch_messages
        self._batch_bytes = batch_bytes

    @property
    def uses_multiappend(self) -> bool:
        """Whether `append_many` sends one APPEND per batch (else one per message)."""
        return self._use_multiappend and Capability.MULTIAPPEND in self.capabilities

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
        """Whether `folder` holds a message whose Message-ID header contains `message_id`."""
        return bool(await self.uids_with_message_ids(folder, [message_id]))

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

    async def message_ids_of(self, folder: str, uids: Sequence[int]) -> set[str]:
        """The Message-ID values of the messages `uids` in `folder`: `UID FETCH` of that
        one header field, a few hundred UIDs per command."""
        if not uids:
            return set()
        await self._command("EXAMINE", mailbox_argument(folder))
        found: set[str] = set()
        for start in range(0, len(uids), FETCH_UIDS):
            some = ",".join(str(uid) for uid in uids[start : start + FETCH_UIDS])
            _, untagged = await self._command("UID FETCH", some, MESSAGE_ID_FIELD)
            # A FETCH response's payload alternates line text and literals: the header
            # block is the literal.
            found |= header_message_ids(
                literal for r in untagged if r.name == FETCH_RESPONSE for literal in r.rest[1::2]
            )
        if Capability.UNSELECT in self.capabilities:
            await self._command("UNSELECT")
        return found

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


async def open_appender(
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
    policy: HostPolicy = ALLOW_ALL,
) -> ImapAppender:
    """Connect and log in (as `open_imap`), for filing copies."""
    appender = await open_imap(
        host,
        port,
        security,
        username,
        password,
        ssl_context=ssl_context,
        timeout=timeout,
        use_literal_plus=use_literal_plus,
        policy=policy,
        client=functools.partial(
            ImapAppender,
            use_multiappend=use_multiappend,
            batch_messages=batch_messages,
            batch_bytes=batch_bytes,
        ),
    )
    assert isinstance(appender, ImapAppender)
    return appender
