"""One send-chunk job, start to finish: a thin loop over the pure rules of `records.py`
and `outcomes.py`, talking to small parts wired in `service.py`.

For each block of recipients: render, keep the bytes of every message owing a Sent copy
(acknowledged before any of them goes to SMTP); then per recipient: claim → (claim
lost: state what the record says, take a dead sender's claim over) → suppressed? →
rate limit → SMTP → record the outcome. Then the copies owed (new ones, and those a dead
sender left) are filed in one MULTIAPPEND and stated by one `sent_copies.filed`, and only
then is the job acknowledged. A temporary failure releases the claim and the job comes
back later (nak with delay), as does a Sent folder that cannot be reached; an
authentication failure pauses the campaign.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from pigeon_common import events as ev
from pigeon_common.connect_failure import FailureKind
from pigeon_common.domain.status import CampaignStatus
from pigeon_common.jetstream import publish_event, publish_event_nowait
from pigeon_common.jobs import SendChunk
from pigeon_common.render import RecipientSpec, RenderedMessage, TemplateError
from pigeon_common.sending import NotSendableError, fail_campaign
from pigeon_common.smtp import SmtpConnectError
from pigeon_common.smtp_outcomes import Outcome, Verdict
from pigeon_common.validation import InvalidAddressError
from pigeon_sender import metrics, outcomes
from pigeon_sender import records as rec
from pigeon_sender.campaign import SendingCampaign
from pigeon_sender.claims import OUTCOME_RETRY_SEC, Claim
from pigeon_sender.mailcopy import Copy, Filing, SentCopier
from pigeon_sender.outcomes import Stated
from pigeon_sender.ratelimit import Grant, Limits
from pigeon_sender.records import ClaimRecord, ClaimStatus
from pigeon_sender.store import CampaignStore
from pigeon_sender.uid_floor import KeptCopy, UidFloor

log = logging.getLogger(__name__)
HEARTBEAT_SEC = 2.0
MAX_RATE_WAIT_IN_JOB_SEC = 5.0
TOKENS_PER_BLOCK = 50
PROJECTION_LAG_RETRY_SEC = 0.5


# --- the parts the loop talks to (the real ones are wired in service.py) --------------------


class Claims(Protocol):
    async def claim(self, key: str, value: bytes) -> Claim: ...
    async def put(self, key: str, record: ClaimRecord) -> None: ...
    async def record(self, key: str, record: ClaimRecord) -> Awaitable[Any]: ...
    async def get(self, key: str) -> ClaimRecord | None: ...


class CopyKeeper(Protocol):
    async def keep(self, key: str, raw: bytes, floor: UidFloor | None) -> Awaitable[Any]: ...
    async def get(self, key: str) -> KeptCopy | None: ...
    async def forget(self, key: str) -> Awaitable[Any]: ...


class Limiter(Protocol):
    async def reserve(self, mailbox_id: uuid.UUID, limits: Limits, wanted: int) -> Grant: ...


class Messenger(Protocol):
    async def send(self, campaign: SendingCampaign, message: RenderedMessage) -> Outcome: ...
    async def close(self) -> None: ...


class CopierSource(Protocol):
    async def for_campaign(self, campaign: SendingCampaign) -> SentCopier: ...
    async def close(self) -> None: ...


ChunkDone = Callable[[SendingCampaign, SendChunk], Awaitable[None]]


@dataclass
class Deps:
    """What every worker of a process shares."""

    js: JetStreamContext
    store: CampaignStore
    claims: Claims
    copies: CopyKeeper
    limiter: Limiter
    on_chunk_done: ChunkDone | None = None
    heartbeat_sec: float = HEARTBEAT_SEC


@dataclass
class ChunkReport:
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    suppressed: int = 0
    retry: int = 0
    replayed: int = 0  # outcomes found recorded by an earlier attempt
    filed: int = 0
    pending_copies: int = 0

    def count(self, status: ClaimStatus) -> None:
        setattr(self, status.value, getattr(self, status.value) + 1)


@dataclass
class _Chunk:
    """One job's run: its campaign, acks to await and copies to file before the ack."""

    campaign: SendingCampaign
    deliveries: int
    copier: SentCopier
    report: ChunkReport = field(default_factory=ChunkReport)
    acks: list[Awaitable[Any]] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    delay: float | None = None  # set: nak the job with this delay instead of acking


@dataclass(frozen=True, slots=True)
class _Prepared:
    row: Any
    message: RenderedMessage | None = None
    error: str = ""
    copy_key: str = ""  # set when the bytes were kept for a Sent copy
    found: ClaimRecord | None = None  # an earlier attempt's claim: nothing to render


class Worker:
    """Runs jobs one at a time, keeping one SMTP and one IMAP connection per mailbox."""

    def __init__(self, deps: Deps, messenger: Messenger, copiers: CopierSource) -> None:
        self.deps = deps
        self._messenger = messenger
        self._copiers = copiers

    async def close(self) -> None:
        await self._messenger.close()
        await self._copiers.close()

    async def handle(self, msg: Msg) -> ChunkReport | None:
        """Process one job message; acknowledges, naks or terminates it."""
        metrics.CHUNKS.inc()
        with metrics.CHUNKS_IN_FLIGHT.track_inprogress():
            return await self._handle(msg)

    async def _handle(self, msg: Msg) -> ChunkReport | None:
        try:
            job = SendChunk.model_validate_json(msg.data)
        except ValueError as exc:
            log.error("dropping malformed job: %s", exc)
            await msg.term()
            return None
        try:
            campaign = await self.deps.store.campaign(job.campaign_id)
        except (NotSendableError, TemplateError) as exc:
            await fail_campaign(self.deps.js, job.campaign_id, str(exc))
            log.error("campaign %s failed: %s", job.campaign_id, exc)
            await msg.ack()
            return None
        if campaign is None:
            await msg.ack()  # deleted: nothing left to do
            return None
        if outcomes.job_overtook_projection(campaign.status, campaign.run_id, job.run_id):
            await msg.nak(delay=PROJECTION_LAG_RETRY_SEC)  # come back once it is projected
            return None
        chunk = _Chunk(
            campaign,
            msg.metadata.num_delivered or 1,
            await self._copiers.for_campaign(campaign),
        )
        if chunk.deliveries > 1:
            metrics.CHUNKS_REDELIVERED.inc()
        beat = asyncio.create_task(_keep_in_progress(msg, self.deps.heartbeat_sec))
        try:
            if campaign.status == CampaignStatus.SENDING:
                await self._send_chunk(chunk, job)
            elif chunk.deliveries > 1:
                # Paused, cancelled or finished meanwhile: send nothing (resume enqueues
                # who has no outcome) but file the copies an earlier attempt still owes.
                await self._settle(chunk, job.recipient_ids)
            await self._file_copies(chunk)
            await _await_acks(chunk.acks)
        except Exception:
            # The job comes back, but what was already sent must have its outcome
            # stored: an outcome left unconfirmed would read as a claim without one
            # (unknown) on the next delivery.
            await _settle_acks(chunk.acks)
            raise
        finally:
            beat.cancel()
        if chunk.delay is not None:
            await msg.nak(delay=chunk.delay)
            return chunk.report
        await msg.ack()
        if campaign.status == CampaignStatus.SENDING:
            if self.deps.on_chunk_done is not None:
                await self.deps.on_chunk_done(campaign, job)
            if campaign.sleep_between_batches_sec:
                await asyncio.sleep(campaign.sleep_between_batches_sec)
        return chunk.report

    async def _send_chunk(self, chunk: _Chunk, job: SendChunk) -> None:
        rows = await self.deps.store.chunk(chunk.campaign, job.recipient_ids)
        log.info(
            "chunk %d of campaign %s: %d recipients (delivery %d)",
            job.chunk_index,
            job.campaign_id,
            len(rows.recipients),
            chunk.deliveries,
        )
        tokens, tokens_until = 0, 0.0
        recipients = rows.recipients
        floor = await chunk.copier.floor()  # before anything of this attempt is filed
        for start in range(0, len(recipients), TOKENS_PER_BLOCK):
            block = await self._prepare(
                chunk, recipients[start : start + TOKENS_PER_BLOCK], rows.suppressed, floor
            )
            for index, item in enumerate(block):
                if item.found is not None:
                    await self._take_over(chunk, item.row, item.found)
                    continue
                key = rec.claim_key(chunk.campaign.id, item.row["id"])
                held = rec.claimed(
                    item.message.message_id if item.copy_key and item.message else "",
                    copy=bool(item.copy_key),
                )
                claim = await self.deps.claims.claim(
                    key, held.to_json() if held.copy else rec.CLAIMED_VALUE
                )
                if not claim.won:
                    await self._forget(chunk, item)
                    await self._take_over(chunk, item.row, claim.record)
                    continue
                if item.row["id"] in rows.suppressed:
                    record = rec.suppressed(held, item.row["email"], "address is suppressed")
                    await self._record(chunk, item.row["id"], record)
                    continue
                if item.message is None:
                    record = rec.failed(held, item.row["email"], 0, item.error, hard_bounce=False)
                    await self._record(chunk, item.row["id"], record)
                    continue
                if tokens == 0 or time.time() >= tokens_until:
                    left = len(recipients) - start - index
                    try:
                        grant, stop = await self._grant(chunk, left)
                    except Exception:
                        # Nothing went to SMTP: give the claim back, or the redelivered
                        # job would find it held and call it unknown (never sent).
                        await self.deps.claims.put(key, rec.released(held, "interrupted"))
                        await self._forget_all(chunk, block[index:])
                        raise
                    if stop is not None:
                        await self.deps.claims.put(key, rec.released(held, stop))
                        await self._forget_all(chunk, block[index:])
                        return
                    tokens, tokens_until = grant.count, grant.valid_until
                tokens -= 1
                if not await self._send_one(chunk, key, held, item):
                    await self._forget_all(chunk, block[index + 1 :])
                    return

    async def _prepare(
        self,
        chunk: _Chunk,
        rows: list[Any],
        suppressed: frozenset[uuid.UUID],
        floor: UidFloor | None,
    ) -> list[_Prepared]:
        """Render a block and keep the bytes of those owing a copy; every byte write is
        acknowledged before the first of them goes to SMTP. On a redelivery, a recipient an
        earlier attempt holds (not released for a retry) is not rendered: its claim says what
        happened."""
        keeping = chunk.copier.wants_copies
        prepared: list[_Prepared] = []
        kept: list[Awaitable[Any]] = []
        campaign = chunk.campaign
        for row in rows:
            if chunk.deliveries > 1:
                found = await self.deps.claims.get(rec.claim_key(campaign.id, row["id"]))
                if found is not None and not rec.may_claim(found):
                    prepared.append(_Prepared(row, found=found))
                    continue
            if row["id"] in suppressed:
                prepared.append(_Prepared(row))
                continue
            try:
                message = campaign.compiled.render(
                    RecipientSpec(row["id"], row["email"], row["name"], row["attributes"])
                )
            except (TemplateError, InvalidAddressError) as exc:
                log.warning("cannot render for %s: %s", row["email"], exc)
                prepared.append(_Prepared(row, error=f"not sent: {exc}"))
                continue
            key = ""
            if keeping:
                key = rec.copy_key(campaign.id, row["id"], message.message_id)
                kept.append(await self.deps.copies.keep(key, message.raw, floor))
            prepared.append(_Prepared(row, message, copy_key=key))
        for future in kept:
            await future
        return prepared

    async def _grant(self, chunk: _Chunk, left: int) -> tuple[Grant, str | None]:
        """Tokens for the next sends, or why the chunk stops here (the job comes back
        after the rate limit's wait, or resume re-enqueues it)."""
        grant = await self._sendable(chunk.campaign, left)
        if grant.count == 0:
            chunk.delay = grant.retry_after
            return grant, "rate limit"
        if not await self.deps.store.still_sending(chunk.campaign.id):
            # Paused or cancelled meanwhile (checked after any wait for the rate limit).
            return grant, "campaign stopped"
        return grant, None

    async def _send_one(self, chunk: _Chunk, key: str, held: ClaimRecord, item: _Prepared) -> bool:
        """SMTP for one held claim; False when the chunk must stop (server unreachable)."""
        campaign, message = chunk.campaign, item.message
        assert message is not None
        started = time.perf_counter()
        try:
            outcome = await self._messenger.send(campaign, message)
        except SmtpConnectError as exc:
            metrics.CONNECT_FAILURES[exc.failure.kind].inc()
            metrics.count_outcome(ClaimStatus.RETRY)
            log.warning("SMTP %s:%s: %s", campaign.smtp.host, campaign.smtp.port, exc.outcome.reply)
            await self.deps.claims.put(key, rec.released(held, exc.outcome.reply))
            await self._forget(chunk, item)
            chunk.report.retry += 1
            if exc.outcome.verdict is Verdict.AUTH:
                await self._pause(campaign, f"SMTP authentication failed: {exc.outcome.reply}")
            elif exc.failure.kind is FailureKind.DENIED:  # a setting: retrying cannot help
                await self._pause(campaign, exc.failure.message)
            else:
                chunk.delay = outcomes.retry_delay(chunk.deliveries)
            return False
        metrics.SMTP_REPLY_SECONDS.observe(time.perf_counter() - started)
        record = outcomes.after_smtp(
            held, item.row["email"], outcome, message.message_id, datetime.now(UTC)
        )
        if record.status is ClaimStatus.RETRY:
            log.info("will retry %s: %s", item.row["email"], outcome.reply)
            metrics.count_outcome(ClaimStatus.RETRY)
            await self.deps.claims.put(key, record)
            await self._forget(chunk, item)
            chunk.report.retry += 1
            chunk.delay = outcomes.retry_delay(chunk.deliveries)
            return True
        await self._record(chunk, item.row["id"], record)
        if outcomes.owes_copy(record):
            chunk.copies.append(Copy(item.row["id"], record.message_id, message.raw))
        elif item.copy_key:
            await self._forget(chunk, item)
        return True

    async def _record(self, chunk: _Chunk, recipient_id: uuid.UUID, record: ClaimRecord) -> None:
        """Store a recipient's final record in its claim, then state its events."""
        key = rec.claim_key(chunk.campaign.id, recipient_id)
        chunk.acks.append(await self.deps.claims.record(key, record))
        await self._state(chunk, recipient_id, record)
        chunk.report.count(record.status)
        metrics.count_outcome(record.status)

    async def _state(self, chunk: _Chunk, recipient_id: uuid.UUID, record: ClaimRecord) -> None:
        c = chunk.campaign
        for stated in outcomes.events_for(c.id, c.mailbox_id, recipient_id, record):
            chunk.acks.append(await self._publish(stated))

    async def _publish(self, stated: Stated) -> Awaitable[Any]:
        js, envelope = self.deps.js, stated.envelope()
        return await publish_event_nowait(js, envelope, stated.msg_id, within=OUTCOME_RETRY_SEC)

    async def _take_over(self, chunk: _Chunk, row: Any, found: ClaimRecord | None) -> None:
        """A recipient an earlier attempt claimed: state its outcome again (a claim a dead
        sender held becomes unknown) and pick up its copy if still owed."""
        assert found is not None
        record = rec.taken_over(found, row["email"])
        if record is not found:
            await self._record(chunk, row["id"], record)
        else:
            await self._state(chunk, row["id"], record)
            chunk.report.replayed += 1
        await self._recover_copy(chunk, row["id"], record)

    async def _recover_copy(
        self, chunk: _Chunk, recipient_id: uuid.UUID, record: ClaimRecord
    ) -> None:
        if not outcomes.owes_copy(record):
            return
        kept = await self.deps.copies.get(
            rec.copy_key(chunk.campaign.id, recipient_id, record.message_id)
        )
        if kept is not None:  # gone: filed and stated already
            chunk.copies.append(
                Copy(recipient_id, record.message_id, kept.raw, recovered=True, floor=kept.floor)
            )

    async def _settle(self, chunk: _Chunk, recipient_ids: list[uuid.UUID]) -> None:
        for recipient_id in recipient_ids:
            found = await self.deps.claims.get(rec.claim_key(chunk.campaign.id, recipient_id))
            if found is not None and found.status in rec.FINAL:
                await self._recover_copy(chunk, recipient_id, found)

    async def _file_copies(self, chunk: _Chunk) -> None:
        """File the owed copies once their outcome events are stored, state the filing,
        then let their bytes go; copies that cannot be filed make the job come back."""
        if not chunk.copies:
            return
        await _await_acks(chunk.acks)  # the outcome events precede their filing in the stream
        c = chunk.campaign
        ids = [copy.recipient_id for copy in chunk.copies]
        result = await chunk.copier.file(chunk.copies)
        if result.filing is Filing.FAILED:
            stated = outcomes.pending(c.id, c.mailbox_id, ids, result.reason)
            await (await self._publish(stated))
            chunk.report.pending_copies += len(ids)
            metrics.COPIES_UNFILED.inc(len(ids))
            chunk.delay = outcomes.retry_delay(chunk.deliveries)
            return
        if result.filing is Filing.FILED:
            await (await self._publish(outcomes.filed(c.id, c.mailbox_id, result.folder, ids)))
            chunk.report.filed += len(ids)
            metrics.COPIES_FILED.inc(len(ids))
        for copy in chunk.copies:
            key = rec.copy_key(c.id, copy.recipient_id, copy.message_id)
            chunk.acks.append(await self.deps.copies.forget(key))

    async def _forget(self, chunk: _Chunk, item: _Prepared) -> None:
        if item.copy_key:
            chunk.acks.append(await self.deps.copies.forget(item.copy_key))

    async def _forget_all(self, chunk: _Chunk, items: list[_Prepared]) -> None:
        for item in items:
            await self._forget(chunk, item)

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

    async def _pause(self, campaign: SendingCampaign, reason: str) -> None:
        event = ev.CampaignPaused(campaign_id=campaign.id, reason=reason)
        msg_id = f"pause:{campaign.id}:{campaign.run_id}"
        await publish_event(self.deps.js, ev.envelope_for(event, str(campaign.id)), msg_id)
        log.warning("campaign %s paused: %s", campaign.id, reason)


async def _await_acks(acks: list[Awaitable[Any]]) -> None:
    """Await the acks in order, each taken off the list first: after an error the list
    holds exactly the ones not awaited yet."""
    pending = list(acks)
    acks.clear()
    for index, ack in enumerate(pending):
        try:
            await ack
        except BaseException:
            acks.extend(pending[index + 1 :])
            raise


async def _settle_acks(acks: list[Awaitable[Any]]) -> None:
    """Await every pending ack (each retried within its own window), keeping none's error."""
    for ack in acks:
        try:
            await ack
        except Exception as exc:
            log.warning("a write of a failed job stays unconfirmed: %s", exc)
    acks.clear()


async def _keep_in_progress(msg: Msg, every_sec: float) -> None:
    """Tell JetStream the job is alive every `every_sec` until cancelled: the ack wait is
    short (a dead sender's chunk comes back in seconds), while one SMTP reply, a rate
    wait or filing the copies may each outlast it."""
    while True:
        await asyncio.sleep(every_sec)
        try:
            await msg.in_progress()
        except Exception as exc:  # NATS away: the next beat tries again
            log.warning("job heartbeat failed: %s", exc)
