"""One send-chunk job, start to finish.

For each recipient: claim → (suppressed? record it) → rate limit → render → SMTP →
record the outcome. Then the copies of the sent messages go to the IMAP Sent folder in
one MULTIAPPEND, the outcome events are stored, and only then is the job acknowledged.
A temporary failure releases the claim and the job comes back later (nak with delay);
an authentication failure pauses the campaign.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from pigeon_common import events as ev
from pigeon_common.connect_failure import FailureKind
from pigeon_common.host_policy import ALLOW_ALL, HostPolicy
from pigeon_common.jetstream import publish_event, publish_event_nowait
from pigeon_common.jobs import RUNS_BUCKET, SendChunk
from pigeon_common.queries import Queries
from pigeon_common.render import RecipientSpec, TemplateError, TrackingSigner
from pigeon_common.secrets_box import SecretBox
from pigeon_common.sending import NotSendableError, fail_campaign
from pigeon_common.smtp import SmtpConnectError, SmtpSession
from pigeon_common.smtp_outcomes import Outcome, Verdict
from pigeon_common.validation import InvalidAddressError, address_key
from pigeon_sender.campaign import (
    SendingCampaign,
    compiled_version,
    sending_campaign,
)
from pigeon_sender.claims import ClaimStore, claim_key
from pigeon_sender.mailcopy import SentCopier
from pigeon_sender.ratelimit import Grant, RateLimiter

log = logging.getLogger(__name__)
SQL = Queries.from_package("pigeon_sender", "queries.sql")
HEARTBEAT_SEC = 10.0
RETRY_DELAYS_SEC = (2.0, 10.0, 60.0, 300.0, 900.0)
MAX_RATE_WAIT_IN_JOB_SEC = 5.0
TOKENS_PER_BLOCK = 50
NOT_YET_STARTED = frozenset({"draft", "scheduled"})
PROJECTION_LAG_RETRY_SEC = 0.5


def job_overtook_projection(campaign: SendingCampaign, job: SendChunk) -> bool:
    """True when the read model has not yet seen the start (or resume) that enqueued
    `job`: a not-yet-started campaign, or a paused one whose run is not the job's."""
    if campaign.status in NOT_YET_STARTED:
        return True
    return campaign.status == "paused" and campaign.run_id != job.run_id


def outcome_msg_id(campaign_id: uuid.UUID, recipient_id: uuid.UUID) -> str:
    """One outcome event per recipient: a re-publish after a redelivery is a duplicate."""
    return f"outcome:{campaign_id}:{recipient_id}"


def outcome_record(email: str, outcome: Outcome, message_id: str) -> dict[str, Any]:
    """What a claim stores once SMTP answered: enough to publish the event again."""
    if outcome.verdict is Verdict.SENT:
        return {"status": "sent", "email": email, "message_id": message_id, "reply": outcome.reply}
    if outcome.verdict is Verdict.FAILED:
        return {
            "status": "failed",
            "email": email,
            "code": outcome.code,
            "reply": outcome.reply,
            "hard_bounce": outcome.hard_bounce,
        }
    return {"status": "unknown", "email": email, "reason": outcome.reply}


def suppressed_record(email: str, reason: str) -> dict[str, Any]:
    return {"status": "suppressed", "email": email, "reason": reason}


def unrenderable_record(email: str, reason: str) -> dict[str, Any]:
    """A message that could not be made for this recipient (their data trips the template,
    their address cannot be written): failed, nothing was sent, never "unknown"."""
    return {"status": "failed", "email": email, "code": 0, "reply": reason, "hard_bounce": False}


def retry_delay(deliveries: int) -> float:
    return RETRY_DELAYS_SEC[min(max(deliveries - 1, 0), len(RETRY_DELAYS_SEC) - 1)]


@dataclass
class Deps:
    """What every worker shares."""

    pool: asyncpg.Pool
    js: JetStreamContext
    claims: ClaimStore
    limiter: RateLimiter
    signer: TrackingSigner
    box: SecretBox
    public_base_url: str | None
    tls_context: ssl.SSLContext | None = None
    host_policy: HostPolicy = ALLOW_ALL
    # Compiled campaigns, shared by the workers of a process (keyed by id, checked
    # against updated_at): a campaign is compiled once per process, not per worker.
    campaigns: dict[uuid.UUID, SendingCampaign] = field(default_factory=dict)
    on_chunk_done: Any = None  # async callable(campaign, job) for completion checks
    heartbeat_sec: float = HEARTBEAT_SEC


@dataclass
class ChunkReport:
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    suppressed: int = 0
    retry: int = 0
    skipped: int = 0


@dataclass
class _Pending:
    """Acks to await and sent messages to file before the job is acknowledged."""

    acks: list[Awaitable[Any]] = field(default_factory=list)
    # Each sent message with its bytes and when the server accepted it (the event's time:
    # the tracker's prefetch window counts from delivery, not from filing the copy).
    sent: list[tuple[ev.MessageSent, bytes, datetime]] = field(default_factory=list)


class Worker:
    """Runs jobs one at a time, keeping one SMTP and one IMAP connection per mailbox."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._smtp: dict[uuid.UUID, SmtpSession] = {}
        self._copiers: dict[uuid.UUID, SentCopier] = {}
        self._campaigns = deps.campaigns

    async def close(self) -> None:
        for session in self._smtp.values():
            await session.close()
        for copier in self._copiers.values():
            await copier.close()

    async def _campaign(
        self, conn: asyncpg.Connection, campaign_id: uuid.UUID
    ) -> SendingCampaign | None:
        row = await conn.fetchrow(SQL.campaign_for_send, campaign_id)
        if row is None:
            return None
        cached = self._campaigns.get(campaign_id)
        if cached is not None and cached.version == compiled_version(row):
            return cached
        campaign = sending_campaign(
            row,
            self.deps.box,
            self.deps.signer,
            self.deps.public_base_url,
            self.deps.tls_context,
            self.deps.host_policy,
        )
        self._campaigns[campaign_id] = campaign
        return campaign

    async def _publish(
        self,
        pending: _Pending,
        event: ev.Event,
        aggregate: uuid.UUID | str,
        msg_id: str,
        occurred_at: datetime | None = None,
    ) -> None:
        envelope = ev.envelope_for(
            event,
            str(aggregate),
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, msg_id),
            occurred_at=occurred_at,
        )
        pending.acks.append(await publish_event_nowait(self.deps.js, envelope, msg_id))

    async def handle(self, msg: Msg) -> ChunkReport | None:
        """Process one job message; acknowledges, naks or terminates it."""
        try:
            job = SendChunk.model_validate_json(msg.data)
        except ValueError as exc:
            log.error("dropping malformed job: %s", exc)
            await msg.term()
            return None
        async with self.deps.pool.acquire() as conn:
            try:
                campaign = await self._campaign(conn, job.campaign_id)
            except (NotSendableError, TemplateError) as exc:
                await self._fail_campaign(job.campaign_id, str(exc))
                await msg.ack()
                return None
            if campaign is not None and job_overtook_projection(campaign, job):
                # The job overtook the projection of its start or resume: come back soon.
                await msg.nak(delay=PROJECTION_LAG_RETRY_SEC)
                return None
            if campaign is None or campaign.status != "sending":
                # Paused, cancelled or finished: resume re-enqueues what is left.
                await msg.ack()
                return None
            rows = await conn.fetch(SQL.recipients_by_ids, job.campaign_id, job.recipient_ids)
            keys = {r["id"]: address_key(r["email"]) for r in rows}
            suppressed_keys = {
                r["email_key"]
                for r in await conn.fetch(
                    SQL.suppressed_keys, list(keys.values()), campaign.mailbox_id
                )
            }
            suppressed = {rid for rid, key in keys.items() if key in suppressed_keys}
        log.info(
            "chunk %d of campaign %s: %d recipients (delivery %d)",
            job.chunk_index,
            job.campaign_id,
            len(rows),
            msg.metadata.num_delivered or 1,
        )
        order = {rid: i for i, rid in enumerate(job.recipient_ids)}
        recipients = sorted(rows, key=lambda r: order[r["id"]])
        beat = asyncio.create_task(_keep_in_progress(msg, self.deps.heartbeat_sec))
        try:
            report, delay = await self._send_all(msg, campaign, recipients, suppressed)
        finally:
            beat.cancel()
        if delay is not None:
            await msg.nak(delay=delay)
            return report
        await msg.ack()
        if self.deps.on_chunk_done is not None:
            await self.deps.on_chunk_done(campaign, job)
        if campaign.sleep_between_batches_sec:
            await asyncio.sleep(campaign.sleep_between_batches_sec)
        return report

    async def _send_all(
        self, msg: Msg, campaign: SendingCampaign, recipients: list[Any], suppressed: set[uuid.UUID]
    ) -> tuple[ChunkReport, float | None]:
        report = ChunkReport()
        pending = _Pending()
        delay: float | None = None
        tokens, tokens_until = 0, 0.0
        session = self._smtp.setdefault(campaign.mailbox_id, SmtpSession(campaign.smtp))
        if session.endpoint != campaign.smtp:
            await session.close()
            session = self._smtp[campaign.mailbox_id] = SmtpSession(campaign.smtp)
        deliveries = msg.metadata.num_delivered or 1
        for index, row in enumerate(recipients):
            key = claim_key(campaign.id, row["id"])
            claim = await self.deps.claims.claim(key)
            if not claim.won:
                await self._replay(pending, campaign, row, claim.record or {}, report)
                continue
            if row["id"] in suppressed:
                record = suppressed_record(row["email"], "address is suppressed")
                await self._record(pending, campaign, row, record, report)
                continue
            if tokens == 0 or time.time() >= tokens_until:
                grant = await self._sendable(campaign, len(recipients) - index)
                if grant.count == 0:
                    await self.deps.claims.release_for_retry(key, "rate limit")
                    delay = grant.retry_after
                    break
                if not await self._still_sending(campaign):
                    # Paused or cancelled meanwhile (checked after any wait for the rate
                    # limit): stop; resume enqueues whoever has no outcome.
                    await self.deps.claims.release_for_retry(key, "campaign stopped")
                    break
                tokens, tokens_until = grant.count, grant.valid_until
            tokens -= 1
            try:
                rendered = campaign.compiled.render(
                    RecipientSpec(row["id"], row["email"], row["name"], row["attributes"])
                )
            except (TemplateError, InvalidAddressError) as exc:
                log.warning("cannot render for %s: %s", row["email"], exc)
                record = unrenderable_record(row["email"], f"not sent: {exc}")
                await self._record(pending, campaign, row, record, report)
                continue
            try:
                outcome = await session.send(
                    rendered.envelope_from, rendered.envelope_to, rendered.raw
                )
            except SmtpConnectError as exc:
                log.warning(
                    "SMTP %s:%s: %s", campaign.smtp.host, campaign.smtp.port, exc.outcome.reply
                )
                await self.deps.claims.release_for_retry(key, exc.outcome.reply)
                if exc.outcome.verdict is Verdict.AUTH:
                    await self._pause(campaign, f"SMTP authentication failed: {exc.outcome.reply}")
                elif exc.failure.kind is FailureKind.DENIED:  # a setting: retrying cannot help
                    await self._pause(campaign, exc.failure.message)
                else:
                    delay = retry_delay(deliveries)
                report.retry += 1
                break
            if outcome.verdict is Verdict.RETRY:
                log.info("will retry %s: %s", row["email"], outcome.reply)
                await self.deps.claims.release_for_retry(key, outcome.reply)
                report.retry += 1
                delay = retry_delay(deliveries)
                continue
            record = outcome_record(row["email"], outcome, rendered.message_id)
            await self._record(pending, campaign, row, record, report, raw=rendered.raw)
        await self._file_copies(campaign, pending)
        for ack in pending.acks:
            await ack
        return report, delay

    async def _still_sending(self, campaign: SendingCampaign) -> bool:
        """Checked before each block of sends (at most TOKENS_PER_BLOCK messages)."""
        async with self.deps.pool.acquire() as conn:
            status = await conn.fetchval(SQL.campaign_status_only, campaign.id)
        return bool(status == "sending")

    async def _sendable(self, campaign: SendingCampaign, left: int) -> Grant:
        """Sends the mailbox's limits allow now, waiting up to a few seconds for a window
        to open; a grant with count 0 says how long the job must wait instead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_RATE_WAIT_IN_JOB_SEC
        while True:
            grant = await self.deps.limiter.reserve(
                campaign.mailbox_id, campaign.limits, min(left, TOKENS_PER_BLOCK)
            )
            now = time.time()
            if grant.count and now < grant.valid_until:
                return grant
            wait = grant.retry_after if grant.count == 0 else grant.valid_until - now + 0.11
            if loop.time() + wait > deadline:
                return Grant(0, retry_after=wait)
            await asyncio.sleep(wait)

    async def _record(
        self,
        pending: _Pending,
        campaign: SendingCampaign,
        row: Any,
        record: dict[str, Any],
        report: ChunkReport,
        *,
        raw: bytes = b"",
    ) -> None:
        """Store a recipient's outcome in its claim, then its event."""
        key = claim_key(campaign.id, row["id"])
        pending.acks.append(await self.deps.claims.record(key, record))
        await self._replay(pending, campaign, row, record, report, raw=raw)

    async def _replay(
        self,
        pending: _Pending,
        campaign: SendingCampaign,
        row: Any,
        record: dict[str, Any],
        report: ChunkReport,
        *,
        raw: bytes = b"",
    ) -> None:
        """The event for a recorded outcome (published again after a redelivery: the
        message id makes JetStream keep one)."""
        status = record.get("status")
        email = str(record.get("email", row["email"]))
        base = {"campaign_id": campaign.id, "recipient_id": row["id"], "email": email}
        msg_id = outcome_msg_id(campaign.id, row["id"])
        if status == "sent":
            event = ev.MessageSent(
                **base, message_id=record["message_id"], smtp_reply=record["reply"], appended=False
            )
            if raw:
                pending.sent.append((event, raw, datetime.now(UTC)))
                report.sent += 1
            else:
                await self._publish(pending, event, campaign.id, msg_id)
                report.skipped += 1
        elif status == "failed":
            await self._publish(
                pending,
                ev.MessageFailed(
                    **base,
                    smtp_code=record["code"],
                    smtp_reply=record["reply"],
                    hard_bounce=record["hard_bounce"],
                ),
                campaign.id,
                msg_id,
            )
            if record["hard_bounce"]:
                await self._publish(
                    pending,
                    ev.AddressSuppressed(
                        email=email,
                        mailbox_id=campaign.mailbox_id,
                        reason="hard_bounce",
                        detail=record["reply"],
                    ),
                    email,
                    f"suppress:{campaign.mailbox_id}:{address_key(email)}",
                )
            report.failed += 1
        elif status == "suppressed":
            await self._publish(
                pending, ev.MessageSuppressed(**base, reason=record["reason"]), campaign.id, msg_id
            )
            report.suppressed += 1
        else:
            # "claimed" with no outcome: the sender holding it died mid-send.
            reason = record.get("reason") or "sender stopped before recording the outcome"
            if status == "claimed":
                key = claim_key(campaign.id, row["id"])
                unknown = {"status": "unknown", "email": email, "reason": reason}
                pending.acks.append(await self.deps.claims.record(key, unknown))
            await self._publish(
                pending, ev.MessageUnknown(**base, reason=str(reason)), campaign.id, msg_id
            )
            report.unknown += 1

    async def _file_copies(self, campaign: SendingCampaign, pending: _Pending) -> None:
        """Append the sent messages to Sent, then store their events."""
        appended = False
        if pending.sent:
            copier = self._copiers.get(campaign.mailbox_id)
            if copier is None or copier.endpoint != campaign.imap:
                if copier is not None:
                    await copier.close()
                copier = self._copiers[campaign.mailbox_id] = SentCopier(
                    campaign.mailbox_id,
                    campaign.imap,
                    campaign.sent_folder,
                    campaign.append_to_sent,
                    self.deps.js,
                    self.deps.tls_context,
                )
            appended = await copier.file(
                [raw for _, raw, _ in pending.sent], pending.sent[0][0].message_id
            )
        for event, _, accepted_at in pending.sent:
            await self._publish(
                pending,
                event.model_copy(update={"appended": appended}),
                campaign.id,
                outcome_msg_id(campaign.id, event.recipient_id),
                occurred_at=accepted_at,
            )

    async def _pause(self, campaign: SendingCampaign, reason: str) -> None:
        event = ev.CampaignPaused(campaign_id=campaign.id, reason=reason)
        msg_id = f"pause:{campaign.id}:{campaign.run_id}"
        await publish_event(self.deps.js, ev.envelope_for(event, str(campaign.id)), msg_id)
        log.warning("campaign %s paused: %s", campaign.id, reason)

    async def _fail_campaign(self, campaign_id: uuid.UUID, reason: str) -> None:
        """Store the failure; if it cannot be stored the job is not acked (it comes back)."""
        await fail_campaign(self.deps.js, campaign_id, reason)
        log.error("campaign %s failed: %s", campaign_id, reason)


async def mark_chunk_done(
    js: JetStreamContext, campaign_id: uuid.UUID, run_id: uuid.UUID, chunk_index: int
) -> int:
    """Add the chunk to its run's set of finished chunks; returns how many are finished."""
    kv = await js.key_value(RUNS_BUCKET)
    key = f"{campaign_id}.{run_id}"
    for _ in range(50):
        try:
            entry = await kv.get(key)
            done, revision = set(json.loads(entry.value or b"[]")), entry.revision
        except KeyNotFoundError:
            done, revision = set(), None
        done.add(chunk_index)
        value = json.dumps(sorted(done)).encode()
        try:
            if revision is None:
                await kv.create(key, value)
            else:
                await kv.update(key, value, last=revision)
            return len(done)
        except KeyWrongLastSequenceError:
            continue
    raise RuntimeError(f"could not record chunk {chunk_index} of run {run_id}")


async def _keep_in_progress(msg: Msg, every_sec: float) -> None:
    """Tell JetStream the job is alive every `every_sec` until cancelled: one SMTP reply,
    a rate-limit wait or filing the Sent copies may each outlast the ack wait, and a job
    redelivered while it still runs would report its in-flight recipients as unknown."""
    while True:
        await asyncio.sleep(every_sec)
        try:
            await msg.in_progress()
        except Exception as exc:  # NATS away: the next beat tries again
            log.warning("job heartbeat failed: %s", exc)
