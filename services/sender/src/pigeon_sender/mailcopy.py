"""Copies of sent messages in the mailbox's own Sent folder (the IMAP-first promise).

`append_to_sent`: `always` appends, `never` does not, `auto` appends unless the provider
already files SMTP submissions in Sent (as Gmail does): checked once per mailbox by
looking for the first sent message's Message-ID there, and remembered for three days.

A copy found after a takeover (`recovered`) may already be in Sent: the sender that
died may have appended it before stating so. Each such copy is looked up by its
Message-ID first, among the UIDs from its chunk's floor on (`uid_floor.py`: what the
dead sender appended is there, not in the folder's older mail), and appended only when
absent, so Sent holds it exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from pigeon_common.imap_protocol import ImapConnectionError
from pigeon_common.jobs import RUNS_BUCKET
from pigeon_sender.appender import ImapAppender, open_appender
from pigeon_sender.campaign import ImapEndpoint
from pigeon_sender.uid_floor import UidFloor, search_from

log = logging.getLogger(__name__)
PROVIDER_FILES = "provider"
WE_APPEND = "append"
PROVIDER_CHECK_SEC = 3.0
# After a failed connection, chunks start without a floor this long instead of each
# waiting for the server again (their copies wait for filing all the same).
UNREACHABLE_SEC = 30.0
# Test-only fault hook: the process kills itself (SIGKILL) at that point of filing, so a
# test can show that a takeover files what the dead sender had not
# (tests/integration/test_sending_copies.py). Never set in production.
FAULT_ENV = "PIGEON_TEST_COPIER_FAULT"
KILL_BEFORE_APPEND = "kill-before-append"
KILL_AFTER_APPEND = "kill-after-append"


@dataclass(frozen=True, slots=True)
class Copy:
    recipient_id: uuid.UUID
    message_id: str
    raw: bytes
    recovered: bool = False  # found after a takeover: may already be in Sent
    floor: UidFloor | None = None  # where in Sent a recovered copy can be


class Filing(StrEnum):
    FILED = "filed"  # every copy is in Sent once
    PROVIDER = "provider"  # the provider files them itself (or the mailbox never appends)
    FAILED = "failed"  # nothing can be said to be filed: try again later


@dataclass(frozen=True, slots=True)
class FilingResult:
    filing: Filing
    folder: str = ""
    reason: str = ""


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        log.error("test fault %s: killing this sender", point)
        os.kill(os.getpid(), signal.SIGKILL)


class SentCopier:
    def __init__(
        self,
        mailbox_id: uuid.UUID,
        endpoint: ImapEndpoint,
        sent_folder: str,
        mode: str,
        js: JetStreamContext,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.mailbox_id = mailbox_id
        self.endpoint = endpoint
        self._folder = sent_folder
        self._mode = mode
        self._js = js
        self._tls_context = tls_context
        self._imap: ImapAppender | None = None
        self._decision: str | None = None
        self._unreachable_until = 0.0

    @property
    def wants_copies(self) -> bool:
        """Whether the bytes of a message about to be sent must be kept for filing."""
        return self._mode != "never" and self._decision != PROVIDER_FILES

    async def _connection(self) -> ImapAppender:
        if self._imap is None:
            e = self.endpoint
            self._imap = await open_appender(
                e.host,
                e.port,
                e.security,
                e.username,
                e.password,
                ssl_context=self._tls_context,
                policy=e.policy,
            )
            if not self._folder:
                self._folder = await self._imap.find_sent_folder() or "Sent"
        return self._imap

    async def floor(self) -> UidFloor | None:
        """The Sent folder's UID floor for copies kept from now on (None: unknown, as when
        no copies are wanted or the server cannot be reached)."""
        if not self.wants_copies or time.monotonic() < self._unreachable_until:
            return None
        for _ in range(2):
            try:
                imap = await self._connection()
            except Exception as exc:
                log.info("Sent of mailbox %s unreachable: %s", self.mailbox_id, exc)
                self._unreachable_until = time.monotonic() + UNREACHABLE_SEC
                return None
            try:
                return UidFloor(*await imap.uid_position(self._folder))
            except ImapConnectionError:  # closed by the server while idle: once more, anew
                await self.close()
            except Exception as exc:  # no such folder yet, say: appending will tell
                log.info("no UID floor for Sent of mailbox %s: %s", self.mailbox_id, exc)
                return None
        return None

    async def _auto_decision(self, first_message_id: str) -> str:
        if self._decision is not None:
            return self._decision
        kv = await self._js.key_value(RUNS_BUCKET)
        key = f"appendmode.{self.mailbox_id}"
        try:
            self._decision = (await kv.get(key)).value.decode()  # type: ignore[union-attr]
            return self._decision
        except KeyNotFoundError:
            pass
        imap = await self._connection()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROVIDER_CHECK_SEC
        decision = WE_APPEND
        while loop.time() < deadline:
            if await imap.contains_message_id(self._folder, f"<{first_message_id}>"):
                decision = PROVIDER_FILES
                break
            await asyncio.sleep(0.5)
        await kv.put(key, decision.encode())
        self._decision = decision
        log.info(
            "mailbox %s: %s copies in Sent",
            self.mailbox_id,
            "the provider files" if decision == PROVIDER_FILES else "MC Pigeon appends",
        )
        return decision

    async def file(self, copies: list[Copy]) -> FilingResult:
        """Put `copies` in Sent, each once."""
        if self._mode == "never" or not copies:
            return FilingResult(Filing.PROVIDER)
        try:
            if (
                self._mode == "auto"
                and await self._auto_decision(copies[0].message_id) == PROVIDER_FILES
            ):
                return FilingResult(Filing.PROVIDER)
            imap = await self._connection()
            missing = await self._not_yet_filed(imap, copies)
            _fault(KILL_BEFORE_APPEND)
            await imap.append_many(self._folder, [c.raw for c in missing])
            _fault(KILL_AFTER_APPEND)
            return FilingResult(Filing.FILED, folder=self._folder)
        except Exception as exc:
            log.warning(
                "could not file %d copies in Sent of mailbox %s: %s",
                len(copies),
                self.mailbox_id,
                exc,
            )
            await self.close()
            return FilingResult(Filing.FAILED, reason=str(exc) or type(exc).__name__)

    async def _not_yet_filed(self, imap: ImapAppender, copies: list[Copy]) -> list[Copy]:
        """The copies to append: all new ones, and the recovered ones Sent lacks. One
        search from their lowest floor on for every recovered copy; only when some are
        there (the dead sender got part of its batches in), one FETCH of the Message-IDs
        of what it found."""
        recovered = [c for c in copies if c.recovered]
        if not recovered:
            return copies
        validity, _ = await imap.uid_position(self._folder)
        low = search_from((c.floor for c in recovered), validity)
        found = await imap.uids_with_message_ids(
            self._folder, [f"<{c.message_id}>" for c in recovered], (low, None)
        )
        if not found:
            return copies
        present = await imap.message_ids_of(self._folder, sorted(found))
        return [c for c in copies if not (c.recovered and f"<{c.message_id}>" in present)]

    async def close(self) -> None:
        if self._imap is not None:
            with contextlib.suppress(Exception):
                await self._imap.close()
            self._imap = None
