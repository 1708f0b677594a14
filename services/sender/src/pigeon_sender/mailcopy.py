"""Copies of sent messages in the mailbox's own Sent folder (the IMAP-first promise).

`append_to_sent`: `always` appends, `never` does not, `auto` appends unless the provider
already files SMTP submissions in Sent (as Gmail does): checked once per mailbox by
looking for the first sent message's Message-ID there, and remembered for three days.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from pigeon_common.imap_append import ImapAppender, open_imap
from pigeon_common.jobs import RUNS_BUCKET
from pigeon_sender.campaign import ImapEndpoint

log = logging.getLogger(__name__)
PROVIDER_FILES = "provider"
WE_APPEND = "append"
PROVIDER_CHECK_SEC = 3.0


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

    async def _connection(self) -> ImapAppender:
        if self._imap is None:
            e = self.endpoint
            self._imap = await open_imap(
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

    async def file(self, messages: list[bytes], first_message_id: str) -> bool:
        """Append `messages` to Sent; True when MC Pigeon appended them."""
        if self._mode == "never" or not messages:
            return False
        try:
            if (
                self._mode == "auto"
                and await self._auto_decision(first_message_id) == PROVIDER_FILES
            ):
                return False
            imap = await self._connection()
            await imap.append_many(self._folder, messages)
            return True
        except Exception as exc:
            log.warning(
                "could not append %d message(s) to Sent of mailbox %s: %s",
                len(messages),
                self.mailbox_id,
                exc,
            )
            await self.close()
            return False

    async def close(self) -> None:
        if self._imap is not None:
            with contextlib.suppress(Exception):
                await self._imap.close()
            self._imap = None
