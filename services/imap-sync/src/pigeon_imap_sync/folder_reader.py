"""Reading a folder incrementally over IMAP: what imap-sync adds to the shared client.

`ImapFolderReader` is the shared asyncio connection `pigeon_common.imap_client.ImapClient`
(one lock, a timeout on every read and write, any failure drops the connection) plus
SELECT with UIDVALIDITY, `UID SEARCH` for the UIDs past a position, `UID FETCH` of whole
messages (sizes first, so a huge message is never downloaded), `UID MOVE` (or COPY where
MOVE is not offered: mail is never deleted) and IDLE (RFC 2177).

    async with await open_folder_reader(host, 993, "tls", user, password) as imap:
        folder = await imap.select("Bounces")
        for uid, raw in await imap.fetch(await imap.uids_after(last_uid)):
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pigeon_common.events import Security
from pigeon_common.host_policy import ALLOW_ALL, HostPolicy
from pigeon_common.imap_client import DEFAULT_TIMEOUT, ImapClient, open_imap
from pigeon_common.imap_protocol import (
    ImapConnectionError,
    ImapError,
    ImapTimeoutError,
    Response,
    ResponseKind,
    encode_command,
    mailbox_argument,
    parse_search,
    parse_values,
)

IDLE: Final = "IDLE"
MOVE: Final = "MOVE"
FETCH_CHUNK: Final = 200  # UIDs per FETCH: bounded responses, bounded memory
_UID_CODE = re.compile(r"(UIDVALIDITY|UIDNEXT) (\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class FolderState:
    """What SELECT says about a folder."""

    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(frozen=True)
class FetchedMessage:
    """One message by UID: its bytes, or None when it is over the size limit."""

    uid: int
    size: int
    raw: bytes | None


class ImapFolderReader(ImapClient):
    """A logged-in connection that reads one selected folder (made by `open_folder_reader`)."""

    async def select(self, folder: str) -> FolderState:
        """SELECT `folder` (read-write, for MOVE); its UIDVALIDITY, UIDNEXT and size."""
        tagged, untagged = await self._command("SELECT", mailbox_argument(folder))
        codes: dict[str, int] = {}
        exists = 0
        for response in (*untagged, tagged):
            if response.name == "EXISTS" and response.number is not None:
                exists = response.number
            match = _UID_CODE.fullmatch(response.code or "")
            if match:
                codes[match.group(1).upper()] = int(match.group(2))
        if "UIDVALIDITY" not in codes:
            raise ImapError(None, f"{self.host} gave no UIDVALIDITY for {folder}", command="SELECT")
        return FolderState(codes["UIDVALIDITY"], codes.get("UIDNEXT"), exists)

    async def uids_after(self, last_uid: int) -> list[int]:
        """UIDs in the selected folder above `last_uid`, ascending."""
        _, untagged = await self._command("UID SEARCH", f"UID {last_uid + 1}:*")
        # `n:*` always matches the highest UID, even one below n: filter.
        found = {uid for r in untagged if r.name == "SEARCH" for uid in parse_search(r)}
        return sorted(uid for uid in found if uid > last_uid)

    async def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """The size in bytes of each of `uids` still in the folder (RFC822.SIZE)."""
        found: dict[int, int] = {}
        for start in range(0, len(uids), FETCH_CHUNK):
            items = await self._fetch_items(uids[start : start + FETCH_CHUNK], "(UID RFC822.SIZE)")
            found.update((uid, int(fields.get(b"RFC822.SIZE", 0))) for uid, fields in items.items())
        return found

    async def fetch(
        self, uids: Sequence[int], *, max_bytes: int, sizes: dict[int, int] | None = None
    ) -> list[FetchedMessage]:
        """The messages `uids`, in UID order; one over `max_bytes` comes without its bytes
        (it is never downloaded). `sizes`: those `sizes()` gave already, not asked again.
        The caller bounds how many bytes one call brings."""
        if sizes is None:
            sizes = await self.sizes(uids)
        out: list[FetchedMessage] = []
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = [uid for uid in uids[start : start + FETCH_CHUNK] if uid in sizes]
            small = [uid for uid in chunk if sizes[uid] <= max_bytes]
            bodies = await self._fetch_items(small, "(UID BODY.PEEK[])") if small else {}
            for uid in chunk:  # a UID missing from `sizes` was expunged meanwhile
                body = bodies.get(uid, {}).get(b"BODY[]")
                out.append(
                    FetchedMessage(uid, sizes[uid], body if isinstance(body, bytes) else None)
                )
        return out

    async def _fetch_items(self, uids: Sequence[int], items: str) -> dict[int, dict[bytes, Any]]:
        _, untagged = await self._command("UID FETCH", ",".join(map(str, uids)), items)
        found: dict[int, dict[bytes, Any]] = {}
        for response in untagged:
            if response.name != "FETCH":
                continue
            fields = _fetch_fields(response)
            uid = fields.get(b"UID")
            if isinstance(uid, int):
                found[uid] = fields
        return found

    async def move(self, uids: Sequence[int], folder: str) -> None:
        """Move `uids` to `folder` (created when missing). Without MOVE the messages are
        copied and left in place: this client never deletes mail."""
        if not uids:
            return
        await self.create_folder(folder)
        command = "UID MOVE" if MOVE in self.capabilities else "UID COPY"
        await self._command(command, ",".join(map(str, uids)), mailbox_argument(folder))

    async def create_folder(self, folder: str) -> None:
        """CREATE `folder`; one that exists already is fine."""
        try:
            await self._command("CREATE", mailbox_argument(folder))
        except ImapConnectionError:
            raise
        except ImapError as error:
            if (error.code or "").upper() != "ALREADYEXISTS" and "exist" not in str(error).lower():
                raise

    @property
    def can_idle(self) -> bool:
        return IDLE in self.capabilities

    async def idle(self, seconds: float) -> bool:
        """IDLE for at most `seconds`; True as soon as the server reports new mail."""
        async with self._lock:
            if self._broken is not None:
                raise ImapConnectionError(f"IMAP connection to {self.host} is closed")
            try:
                return await self._idle(seconds)
            except ImapConnectionError as error:
                self._abort(error)
                raise
            except BaseException:
                self._abort(ImapConnectionError("IDLE was interrupted"))
                raise

    async def _idle(self, seconds: float) -> bool:
        tag = f"I{next(self._tags)}"
        self._writer.write(encode_command(tag, [IDLE], self._literal_mode)[0])
        await self._drain()
        first = await self._next_response()
        if first.kind is ResponseKind.TAGGED:
            raise first.to_error(IDLE)
        new_mail = False
        normal_timeout = self.timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while not new_mail and (remaining := deadline - loop.time()) > 0:
                self.timeout = remaining
                try:
                    response = await self._next_response()
                except ImapTimeoutError:
                    break  # nothing arrived in time
                new_mail = response.name in ("EXISTS", "RECENT")
        finally:
            self.timeout = normal_timeout
        self._writer.write(b"DONE\r\n")
        await self._drain()
        while True:
            response = await self._next_response()
            if response.kind is ResponseKind.TAGGED and response.tag == tag:
                if not response.is_tagged_ok():
                    raise response.to_error(IDLE)
                return new_mail
            new_mail = new_mail or response.name in ("EXISTS", "RECENT")


def _fetch_fields(response: Response) -> dict[bytes, Any]:
    """`* n FETCH (UID 7 RFC822.SIZE 10 BODY[] {10}...)` as {b"UID": 7, ...}."""
    values = parse_values(response.rest)
    items = values[0] if values and isinstance(values[0], list) else []
    fields: dict[bytes, Any] = {}
    for name, value in zip(items[0::2], items[1::2], strict=False):
        if not isinstance(name, bytes):
            continue
        key = name.upper()
        if key in (b"UID", b"RFC822.SIZE") and isinstance(value, bytes):
            with contextlib.suppress(ValueError):
                fields[key] = int(value)
        elif key.startswith(b"BODY["):
            fields[b"BODY[]"] = value
    return fields


async def open_folder_reader(
    host: str,
    port: int,
    security: Security,
    username: str,
    password: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    policy: HostPolicy = ALLOW_ALL,
) -> ImapFolderReader:
    """Connect and log in (as `open_imap`), for reading folders."""
    reader = await open_imap(
        host,
        port,
        security,
        username,
        password,
        ssl_context=ssl_context,
        timeout=timeout,
        client=ImapFolderReader,
        policy=policy,
    )
    assert isinstance(reader, ImapFolderReader)
    return reader
