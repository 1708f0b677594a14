"""The imap-sync service: one watcher per mailbox with a bounce folder, plus "sync now".

A watcher logs in, syncs, then waits for new mail with IMAP IDLE where the server offers
it (and `PIGEON_IMAP_SYNC_IDLE` allows), or sleeps `PIGEON_IMAP_SYNC_INTERVAL` between
polls. With IDLE it still syncs at least once per interval. A watcher whose mailbox
changed (server, folder, password) or was removed is replaced; one that fails retries
with backoff and says why in imap_sync_state and the log.

"Sync now" (the API's `POST /api/v1/mailboxes/{id}/sync`) is a NATS request on
`pigeon.imap_sync.now`, answered by one imap-sync replica (a queue group) with the sync's
report as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

from nats.aio.msg import Msg

from pigeon_common.backoff import Backoff
from pigeon_common.health import run_with_health
from pigeon_common.jetstream import IMAP_SYNC_NOW_SUBJECT
from pigeon_common.runtime import (
    Boot,
    Connections,
    Readiness,
    check_live,
    pause,
    start,
    until_stopped,
)
from pigeon_common.secrets_box import SecretBox
from pigeon_imap_sync import metrics
from pigeon_imap_sync.settings import ImapSyncSettings
from pigeon_imap_sync.sync import SQL, MailboxAccount, MailboxSync, connect, load_accounts

log = logging.getLogger(__name__)
QUEUE_GROUP = "imap-sync"
RECONCILE_SEC = 5.0  # how soon a new, changed or removed mailbox is noticed
IDLE_MAX_SEC = 29 * 60.0  # RFC 2177: re-issue IDLE at least every 29 minutes
SYNC_NOW_WAIT_SEC = 30.0  # a running sync of the same mailbox is waited for, this long
BOOT = Boot("pigeon-imap-sync", (SQL,), pool_size=5)


class SyncFailedError(ConnectionError):
    """A sync reported an error (already counted and recorded by `MailboxSync.sync`)."""


class ImapSyncService:
    def __init__(self, settings: ImapSyncSettings) -> None:
        self.settings = settings
        self.readiness = Readiness()
        self._box = SecretBox(settings.keys())
        self._conns: Connections | None = None
        self._sync: MailboxSync | None = None
        self._watchers: dict[uuid.UUID, tuple[MailboxAccount, asyncio.Task[None]]] = {}
        self._requests: set[asyncio.Task[None]] = set()

    async def check(self) -> Readiness:
        if self._conns is not None:
            await check_live(self._conns, self.readiness)
        return self.readiness

    async def run(self, stop: asyncio.Event) -> None:
        opening = start(self.settings, BOOT, self.readiness)
        conns = await until_stopped(opening, stop)  # a stop while the servers are away
        if conns is None:
            return
        self._conns = conns
        self._sync = MailboxSync(self._conns.pool, self._conns.js, self.settings)
        subscription = await self._conns.nc.subscribe(
            IMAP_SYNC_NOW_SUBJECT, queue=QUEUE_GROUP, cb=self._on_sync_now
        )
        self.readiness.reason = None
        try:
            while not stop.is_set():
                try:
                    await self._reconcile(stop)
                except Exception as exc:
                    log.warning("cannot read the mailboxes to sync: %s", exc)
                await pause(stop, RECONCILE_SEC)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            for _, task in self._watchers.values():
                task.cancel()
            for _, task in self._watchers.values():
                with contextlib.suppress(BaseException):
                    await task
            await self._conns.close()

    async def _reconcile(self, stop: asyncio.Event) -> None:
        """Start a watcher per mailbox; replace those whose mailbox changed."""
        assert self._conns is not None
        accounts = {a.id: a for a in await load_accounts(self._conns.pool, self._box)}
        for mailbox_id, (account, task) in list(self._watchers.items()):
            current = accounts.get(mailbox_id)
            if current is None or current.version != account.version or task.done():
                task.cancel()
                del self._watchers[mailbox_id]
        for mailbox_id, account in accounts.items():
            if mailbox_id not in self._watchers:
                task = asyncio.create_task(self._watch(account, stop))
                self._watchers[mailbox_id] = (account, task)

    async def _watch(self, account: MailboxAccount, stop: asyncio.Event) -> None:
        assert self._sync is not None
        backoff = Backoff()
        interval = self.settings.imap_sync_interval
        while not stop.is_set():
            try:
                async with await connect(account, self.settings) as reader:
                    while not stop.is_set():
                        report = await self._sync.sync(account, reader)
                        if report.error:
                            raise SyncFailedError(report.error)
                        backoff = Backoff()
                        if self.settings.imap_sync_idle and reader.can_idle:
                            await reader.idle(min(interval, IDLE_MAX_SEC))
                        else:
                            await pause(stop, interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, SyncFailedError):  # no sync ran: counted here
                    metrics.sync_failed(account.id)
                delay = min(backoff.next_delay(), interval)
                log.warning("mailbox %s: %s; retrying in %.1fs", account.name, exc, delay)
                await pause(stop, delay)

    async def _on_sync_now(self, msg: Msg) -> None:
        # nats-py runs a subscription's callbacks one after another: answer in a task of
        # its own so one long sync does not hold up requests for other mailboxes.
        task = asyncio.create_task(self._answer_sync_now(msg))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _answer_sync_now(self, msg: Msg) -> None:
        try:
            reply = await self.sync_now(msg.data)
        except Exception as exc:
            log.warning("sync now failed: %s", exc)
            reply = {"failed": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(Exception):
            await msg.respond(json.dumps(reply).encode())

    async def sync_now(self, request: bytes) -> dict[str, Any]:
        """Sync one mailbox now (its own connection, beside its watcher); the report."""
        assert self._conns is not None and self._sync is not None
        try:
            mailbox_id = uuid.UUID(json.loads(request)["mailbox_id"])
        except (ValueError, KeyError, TypeError):
            return {"error": 'bad request: want {"mailbox_id": UUID}'}
        accounts = {a.id: a for a in await load_accounts(self._conns.pool, self._box)}
        account = accounts.get(mailbox_id)
        if account is None:
            return {"refused": "no such mailbox, or it has no bounce folder"}
        report = await self._sync.sync(account, wait_sec=SYNC_NOW_WAIT_SEC)
        return report.as_dict()


async def serve(settings: ImapSyncSettings, stop: asyncio.Event) -> None:
    service = ImapSyncService(settings)
    await run_with_health(
        service.run, service.check, settings.imap_sync_host, settings.imap_sync_port, stop
    )
