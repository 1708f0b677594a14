"""One sync of one mailbox's bounce folder: read the new mail by UID, store what it means.

The position (UIDVALIDITY and the last UID read) is kept in `imap_sync_state`. A batch of
mail is read, its events are stored in JetStream (acks awaited), and only then is the
position moved past it; processed mail is moved to the processed folder last. A crash
anywhere re-reads the batch, and the events' deterministic message ids (plus the read
model's unique row ids) make the re-read add nothing. When UIDVALIDITY changes, the folder
is read again from its start, as RFC 3501 requires.

Two syncs of the same mailbox never overlap: a PostgreSQL advisory lock is taken per
mailbox, so imap-sync may run as several replicas (and `pigeon imap-sync` beside them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from nats.js import JetStreamContext

from pigeon_common import jetstream
from pigeon_common.connect_failure import ConnectFailure, imap_failure
from pigeon_common.events import Security, envelope_for
from pigeon_common.imap_protocol import ImapError, ImapProtocolError, plan_batches
from pigeon_common.queries import Queries
from pigeon_common.secrets_box import SecretBox, SecretBoxError
from pigeon_common.validation import address_key
from pigeon_imap_sync import metrics
from pigeon_imap_sync.classify import classify
from pigeon_imap_sync.folder_reader import FetchedMessage, ImapFolderReader, open_folder_reader
from pigeon_imap_sync.inbound import Action, Inbound, InboundKind
from pigeon_imap_sync.plan import (
    MessageRef,
    Planned,
    Source,
    bounce_event,
    repeatable,
    reply_event,
    skipped_event,
    suppresses,
)
from pigeon_imap_sync.settings import ImapSyncSettings

log = logging.getLogger(__name__)
SQL = Queries.from_package("pigeon_imap_sync", "queries.sql")
BATCH = 100  # mails read, stored and acknowledged together, at most
BATCH_BYTES = 32 * 1024 * 1024  # and at most this many bytes downloaded per batch
ACQUIRE_TIMEOUT_SEC = 30.0
MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # bigger mail is recorded as unparsed, never downloaded
LOCK_NAMESPACE = 0x5049_4D53  # "PIMS": the advisory-lock class of mailbox syncs


@dataclass(frozen=True)
class MailboxAccount:
    """A mailbox whose bounce folder is synced, with its IMAP login."""

    id: uuid.UUID
    name: str
    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)  # never in a log line or traceback
    folder: str = ""
    version: tuple[Any, ...] = ()


@dataclass
class SyncReport:
    """What one sync did (what `pigeon imap-sync` and the API's "sync now" show)."""

    mailbox_id: uuid.UUID
    folder: str
    read: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    uidvalidity: int = 0
    last_uid: int = 0
    busy: bool = False
    error: str = ""
    error_kind: str = ""  # a connect failure's kind (connect_failure.FailureKind), or ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "mailbox_id": str(self.mailbox_id),
            "folder": self.folder,
            "read": self.read,
            "bounced": self.counts["bounced"],
            "deferred": self.counts["deferred"],
            "replied": self.counts["replied"],
            "auto_replied": self.counts["auto_replied"],
            "skipped": self.counts["skipped"],
            "ignored": self.counts["ignored"],
            "uidvalidity": self.uidvalidity,
            "last_uid": self.last_uid,
            "busy": self.busy,
            "error": self.error,
            "error_kind": self.error_kind,
        }


def account_of(row: Any, box: SecretBox) -> MailboxAccount:
    return MailboxAccount(
        id=row["id"],
        name=row["name"],
        host=row["imap_host"],
        port=row["imap_port"],
        security=row["imap_security"],
        username=row["imap_username"],
        password=box.decrypt(row["imap_password"]),
        folder=row["bounce_folder"],
        version=(row["updated_at"], row["secrets_updated_at"]),
    )


async def load_accounts(pool: asyncpg.Pool, box: SecretBox) -> list[MailboxAccount]:
    """Every mailbox with a bounce folder (one whose password cannot be decrypted is left
    out, with a log line: it must not keep the others from syncing)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(SQL.mailboxes_to_sync)
    accounts: list[MailboxAccount] = []
    for row in rows:
        try:
            accounts.append(account_of(row, box))
        except SecretBoxError as exc:
            log.warning("mailbox %s: cannot decrypt its IMAP password: %s", row["name"], exc)
    return accounts


class ImapConnectFailure(ConnectionError):
    """Connecting or logging in to a mailbox's IMAP server failed; `failure` says how
    (its message shows the server's words only when they were a well-formed response)."""

    def __init__(self, failure: ConnectFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


async def connect(account: MailboxAccount, settings: ImapSyncSettings) -> ImapFolderReader:
    """A logged-in reader, checked against the host policy; ImapConnectFailure if not."""
    try:
        return await open_folder_reader(
            account.host,
            account.port,
            account.security,
            account.username,
            account.password,
            ssl_context=settings.tls_context() if account.security != "plain" else None,
            policy=settings.mailbox_host_policy(),
        )
    except (ImapError, OSError, TimeoutError) as exc:
        raise ImapConnectFailure(imap_failure(exc, account.host, account.port)) from None


class MailboxSync:
    """Syncs mailboxes; one instance per process, shared by the watchers and requests.

    A sync holds one pooled connection from start to end: it carries the mailbox's
    advisory lock and every query of the sync, so concurrent syncs never wait on each
    other for a second connection."""

    def __init__(self, pool: asyncpg.Pool, js: JetStreamContext, settings: ImapSyncSettings):
        self._pool = pool
        self._js = js
        self._settings = settings

    async def sync(
        self,
        account: MailboxAccount,
        reader: ImapFolderReader | None = None,
        *,
        wait_sec: float = 0.0,
    ) -> SyncReport:
        """Read the new mail of `account`'s bounce folder (over `reader`, or a connection
        of its own); errors are reported, not raised, and recorded in imap_sync_state.
        When another sync of the mailbox runs, wait for it up to `wait_sec`, then report
        `busy`."""
        report = SyncReport(account.id, account.folder)
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SEC) as conn:
                if not await _try_lock(conn, account.id, wait_sec):
                    report.busy = True
                    return report
                try:
                    run = _FolderRun(conn, self._js, self._settings, account, report)
                    await run.sync(reader)
                except Exception as exc:
                    report.error = _describe(exc)
                    report.error_kind = _kind(exc)
                    log.warning("sync of mailbox %s failed: %s", account.name, report.error)
                    with contextlib.suppress(Exception):
                        await conn.execute(
                            SQL.save_sync_error, account.id, account.folder, report.error[:500]
                        )
                finally:
                    await conn.execute(SQL.unlock_mailbox, LOCK_NAMESPACE, str(account.id))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            report.error = f"database: {_describe(exc)}"
        if report.error:
            metrics.sync_failed(account.id)
        elif not report.busy:
            metrics.sync_succeeded(account.id, report.counts)
        return report


class _FolderRun:
    """One sync of one mailbox's bounce folder, on the connection holding its lock."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        js: JetStreamContext,
        settings: ImapSyncSettings,
        account: MailboxAccount,
        report: SyncReport,
    ) -> None:
        self._conn = conn
        self._js = js
        self._settings = settings
        self._account = account
        self._report = report
        # Messages that bounced repeatably in this run, per address key: the read model
        # may not contain this run's earlier events yet.
        self._repeats: dict[str, set[tuple[uuid.UUID, uuid.UUID]]] = {}

    async def sync(self, reader: ImapFolderReader | None) -> None:
        if reader is None:
            async with await connect(self._account, self._settings) as own:
                await self._read_folder(own)
        else:
            await self._read_folder(reader)

    async def _read_folder(self, reader: ImapFolderReader) -> None:
        account, report = self._account, self._report
        folder = await reader.select(account.folder)
        state = await self._conn.fetchrow(SQL.sync_state, account.id, account.folder)
        last_uid = 0
        if state is not None and state["uidvalidity"] == folder.uidvalidity:
            last_uid = state["last_uid"]
        elif state is not None and state["uidvalidity"]:
            log.info("%s: UIDVALIDITY changed, reading %s again", account.name, account.folder)
        report.uidvalidity, report.last_uid = folder.uidvalidity, last_uid
        uids = await reader.uids_after(last_uid)
        sizes = await reader.sizes(uids)
        uids = [uid for uid in uids if uid in sizes]
        # Batches bounded in count and bytes; a message over the limit is not downloaded.
        downloaded = [sizes[uid] if sizes[uid] <= MAX_MESSAGE_BYTES else 0 for uid in uids]
        for batch_range in plan_batches(downloaded, BATCH, BATCH_BYTES) if uids else []:
            batch = [uids[i] for i in batch_range]
            fetched = await reader.fetch(batch, max_bytes=MAX_MESSAGE_BYTES, sizes=sizes)
            planned: list[Planned] = []
            for message in fetched:
                source = Source(account.id, account.folder, folder.uidvalidity, message.uid)
                planned += await self._plan(message, source)
            await self._store(planned)
            report.read += len(fetched)
            report.last_uid = batch[-1]
            await self._conn.execute(
                SQL.save_sync_state, account.id, account.folder, folder.uidvalidity, batch[-1]
            )
            if self._settings.imap_processed_folder:
                await reader.move(batch, self._settings.imap_processed_folder)
        if not uids:
            await self._conn.execute(
                SQL.save_sync_state, account.id, account.folder, folder.uidvalidity, last_uid
            )

    async def _plan(self, message: FetchedMessage, source: Source) -> list[Planned]:
        report = self._report
        if message.raw is None:
            report.counts["skipped"] += 1
            return [skipped_event(source, "unparsed", f"too large ({message.size} bytes)")]
        inbound = classify(message.raw)
        if inbound.kind is InboundKind.UNPARSED:
            report.counts["skipped"] += 1
            return [skipped_event(source, "unparsed", inbound.reason)]
        if inbound.kind in (InboundKind.BOUNCE, InboundKind.DEFERRAL):
            return await self._plan_bounce(inbound, source)
        if inbound.kind in (InboundKind.REPLY, InboundKind.AUTO_REPLY):
            refs = await self._references(inbound)
            ref = refs[0] if refs else None
            if ref is None and inbound.kind is InboundKind.AUTO_REPLY and inbound.sender:
                ref = await self._latest_to(inbound.sender)
            if ref is None:
                report.counts["skipped"] += 1
                return [skipped_event(source, "unmatched", f"{inbound.kind}: no message of ours")]
            report.counts["replied" if inbound.kind is InboundKind.REPLY else "auto_replied"] += 1
            return [reply_event(ref, inbound, source)]
        report.counts["ignored"] += 1  # ordinary mail in the folder: not ours to record
        return []

    async def _plan_bounce(self, inbound: Inbound, source: Source) -> list[Planned]:
        candidates = await self._references(inbound)
        planned: list[Planned] = []
        for bounced in inbound.recipients:
            key = address_key(bounced.email)
            ref = next((c for c in candidates if address_key(c.email) == key), None)
            if ref is None and len(candidates) == 1 and len(inbound.recipients) == 1:
                ref = candidates[0]  # the bounce names a rewritten address (alias, forward)
            if ref is None:
                ref = await self._latest_to(bounced.email)
            if ref is None:
                continue
            suppress = False
            if bounced.action is not Action.DELAYED:
                earlier = 0
                if repeatable(bounced):
                    earlier = len(await self._other_repeats(ref))
                    self._repeats.setdefault(address_key(ref.email), set()).add(_key(ref))
                suppress = suppresses(bounced, earlier, self._settings.soft_bounce_limit)
            planned.append(bounce_event(ref, bounced, source, suppress=suppress))
            self._report.counts["deferred" if bounced.action is Action.DELAYED else "bounced"] += 1
        if not planned:
            self._report.counts["skipped"] += 1
            return [skipped_event(source, "unmatched", f"{inbound.kind}: no message of ours")]
        return planned

    async def _references(self, inbound: Inbound) -> list[MessageRef]:
        refs: list[MessageRef] = []
        for campaign_id, recipient_id in inbound.references:
            row = await self._conn.fetchrow(SQL.message_of, campaign_id, recipient_id)
            if row is not None:
                refs.append(_ref(row))
        return refs

    async def _latest_to(self, email: str) -> MessageRef | None:
        row = await self._conn.fetchrow(SQL.latest_message_to, self._account.id, email)
        return _ref(row) if row is not None else None

    async def _other_repeats(self, ref: MessageRef) -> set[tuple[uuid.UUID, uuid.UUID]]:
        """Other messages to this address from this mailbox that bounced repeatably
        within the window (this run's included; the message itself excluded)."""
        found = set(self._repeats.get(address_key(ref.email), set()))
        if ref.mailbox_id is not None:
            since = datetime.now(UTC) - timedelta(days=self._settings.soft_bounce_window_days)
            rows = await self._conn.fetch(
                SQL.repeat_bounced_messages, ref.mailbox_id, ref.email, since
            )
            found.update((row["campaign_id"], row["recipient_id"]) for row in rows)
        found.discard(_key(ref))
        return found

    async def _store(self, planned: list[Planned]) -> None:
        if not planned:
            return
        envelopes = [
            (envelope_for(p.event, p.aggregate_id, event_id=_event_id(p.msg_id)), p.msg_id)
            for p in planned
        ]
        await jetstream.publish_events_with_ids(self._js, envelopes)


def _key(ref: MessageRef) -> tuple[uuid.UUID, uuid.UUID]:
    return (ref.campaign_id, ref.recipient_id)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ImapConnectFailure):
        return exc.failure.message
    if isinstance(exc, ImapProtocolError):  # never echo what a non-IMAP peer sent
        return "the IMAP server sent something that is not IMAP"
    return f"{type(exc).__name__}: {exc}"


def _kind(exc: BaseException) -> str:
    return str(exc.failure.kind) if isinstance(exc, ImapConnectFailure) else ""


async def _try_lock(conn: asyncpg.Connection, mailbox_id: uuid.UUID, wait_sec: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_sec
    while True:
        if await conn.fetchval(SQL.try_lock_mailbox, LOCK_NAMESPACE, str(mailbox_id)):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.1)


def _ref(row: Any) -> MessageRef:
    return MessageRef(row["campaign_id"], row["recipient_id"], row["email"], row["mailbox_id"])


def _event_id(msg_id: str) -> uuid.UUID:
    # The same mail read twice gives the same event id, so read-model rows keyed by it agree.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"pigeon:{msg_id}")
