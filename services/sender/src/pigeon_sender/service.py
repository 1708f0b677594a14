"""The sender service: N workers on the shared durable consumer, a completion check, the
scheduler for campaigns whose send_at has come, and /healthz + /readyz."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid

from nats.js.errors import FetchTimeoutError

from pigeon_common import events as ev
from pigeon_common.backoff import Backoff
from pigeon_common.domain.campaign import CampaignState
from pigeon_common.domain.status import CampaignStatus
from pigeon_common.health import run_with_health
from pigeon_common.jetstream import EVENTS_STREAM, JOBS_STREAM
from pigeon_common.jobs import SENDER_CONSUMER, SendChunk, provision_sending
from pigeon_common.render import TemplateError, TrackingSigner, compile_campaign
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
from pigeon_common.sending import (
    NotSendableError,
    complete_campaign,
    fail_campaign,
    load_spec,
    start_sending,
)
from pigeon_common.watermark import ProjectionWatermark
from pigeon_sender.campaign import SendingCampaign
from pigeon_sender.chunks import mark_chunk_done
from pigeon_sender.claims import ClaimStore
from pigeon_sender.copies import CopyStore
from pigeon_sender.messenger import Copiers, SmtpMessenger
from pigeon_sender.ratelimit import RateLimiter
from pigeon_sender.settings import SenderSettings
from pigeon_sender.store import SQL, CampaignStore
from pigeon_sender.worker import Deps, Worker

log = logging.getLogger(__name__)
SCHEDULER_INTERVAL_SEC = 5.0
COMPLETION_WAIT_SEC = 30.0
BOOT = Boot("pigeon-sender", (SQL,))
# The last chunk's job is acked before the run's count and the completion check: those
# are retried this long (a NATS leader election, a PostgreSQL hiccup) or nobody would.
CHUNK_DONE_RETRY_SEC = 60.0


class SenderService:
    def __init__(self, settings: SenderSettings) -> None:
        self.settings = settings
        self.readiness = Readiness()
        self._conns: Connections | None = None
        self._watermark: ProjectionWatermark | None = None
        self._signer = TrackingSigner(settings.keys())
        self._box = SecretBox(settings.keys())

    async def check(self) -> Readiness:
        if self._conns is not None:
            await check_live(self._conns, self.readiness)
        return self.readiness

    async def run(self, stop: asyncio.Event) -> None:
        database_url, _ = self.settings.require_servers()
        # One connection per worker, plus the scheduler's and the completion check's.
        boot = dataclasses.replace(BOOT, pool_size=self.settings.sender_concurrency + 2)
        conns = await until_stopped(start(self.settings, boot, self.readiness), stop)
        if conns is None:
            return
        self._conns = conns
        try:
            await provision_sending(
                conns.js, self.settings.jetstream_replicas, self.settings.job_ack_wait_sec
            )
            self._watermark = ProjectionWatermark(database_url, conns.pool)
            await self._watermark.start()
            # The one place the worker's parts are wired to the real servers.
            tls_context = self.settings.tls_context()
            deps = Deps(
                js=conns.js,
                store=CampaignStore(
                    conns.pool,
                    self._box,
                    self._signer,
                    self.settings.tracking_base,
                    tls_context,
                    self.settings.mailbox_host_policy(),
                ),
                claims=await ClaimStore.open(conns.js),
                copies=await CopyStore.open(conns.js),
                limiter=await RateLimiter.open(conns.js),
                on_chunk_done=self._chunk_done,
                heartbeat_sec=self.settings.job_ack_wait_sec / 3,
            )
            tasks = [
                asyncio.create_task(
                    self._work(Worker(deps, SmtpMessenger(), Copiers(conns.js, tls_context)), stop)
                )
                for _ in range(self.settings.sender_concurrency)
            ]
            tasks.append(asyncio.create_task(self._schedule(stop)))
            self.readiness.reason = None
            await asyncio.gather(*tasks)
            log.info("workers stopped; closing connections")
        finally:
            # Logged by phase: a sender slow to exit on SIGTERM shows where it waited.
            if self._watermark is not None:
                await self._watermark.close()
            await conns.close()
            log.info("connections closed")

    async def _work(self, worker: Worker, stop: asyncio.Event) -> None:
        assert self._conns is not None
        sub = await self._conns.js.pull_subscribe_bind(SENDER_CONSUMER, stream=JOBS_STREAM)
        backoff = Backoff()
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(1, timeout=1.0)
                except (TimeoutError, FetchTimeoutError):
                    continue
                except Exception as exc:
                    log.warning("fetching jobs failed: %s", exc)
                    await asyncio.sleep(backoff.next_delay())
                    continue
                for msg in msgs:
                    try:
                        report = await worker.handle(msg)
                        backoff.reset()
                        if report is not None:
                            log.info("chunk done: %s", report)
                    except Exception as exc:
                        log.exception("job failed, will be redelivered: %s", exc)
                        with contextlib.suppress(Exception):
                            await msg.nak(delay=backoff.next_delay())
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            await worker.close()

    async def _chunk_done(self, campaign: SendingCampaign, job: SendChunk) -> None:
        assert self._conns is not None and self._watermark is not None
        if job.run_id != campaign.run_id:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CHUNK_DONE_RETRY_SEC
        backoff = Backoff()
        while True:
            try:  # both steps are idempotent: a set of chunks, one `done:` message id
                js = self._conns.js
                done = await mark_chunk_done(js, campaign.id, job.run_id, job.chunk_index)
                if done >= campaign.run_chunks:
                    await self.check_complete(campaign.id)
                return
            except Exception as exc:
                delay = backoff.next_delay()
                if loop.time() + delay > deadline:
                    raise
                log.warning("counting chunk %d failed (%s); retrying", job.chunk_index, exc)
                await asyncio.sleep(delay)

    async def check_complete(self, campaign_id: uuid.UUID) -> bool:
        """Publish the campaign's DONE when every recipient has an outcome."""
        assert self._conns is not None and self._watermark is not None
        info = await self._conns.js.stream_info(EVENTS_STREAM)
        await self._watermark.wait_for(info.state.last_seq, COMPLETION_WAIT_SEC)
        async with self._conns.pool.acquire() as conn:
            counts = await conn.fetchrow(SQL.outcome_counts, campaign_id)
        outcomes = counts["sent"] + counts["failed"] + counts["unknown"] + counts["suppressed"]
        if outcomes < counts["recipients"]:
            return False
        await complete_campaign(
            self._conns.js,
            campaign_id,
            sent=counts["sent"],
            failed=counts["failed"],
            unknown=counts["unknown"],
            suppressed=counts["suppressed"],
        )
        log.info("campaign %s done: %s", campaign_id, counts)
        return True

    async def _wait_projected(self, seq: int) -> bool:
        assert self._watermark is not None
        return await self._watermark.wait_for(seq, COMPLETION_WAIT_SEC)

    async def _schedule(self, stop: asyncio.Event) -> None:
        """Start scheduled campaigns whose time has come (every replica may; starting is
        idempotent)."""
        assert self._conns is not None
        while not stop.is_set():
            await pause(stop, SCHEDULER_INTERVAL_SEC)
            if stop.is_set():
                return
            try:
                await self._start_due()
            except Exception as exc:
                log.warning("scheduler round failed: %s", exc)

    async def _start_due(self) -> None:
        assert self._conns is not None
        async with self._conns.pool.acquire() as conn:
            for row in await conn.fetch(SQL.due_scheduled_campaigns):
                try:
                    spec = await load_spec(conn, row["id"], self.settings.tracking_base)
                    links = compile_campaign(spec, self._signer).links
                except (NotSendableError, TemplateError) as exc:
                    await fail_campaign(self._conns.js, row["id"], str(exc))
                    continue
                options = ev.SendOptions(
                    batch_size=row["batch_size"] or self.settings.batch_size,
                    sleep_between_batches_sec=row["sleep_between_batches_sec"] or 0.0,
                )
                state = CampaignState(row["id"], CampaignStatus(row["status"]))
                await start_sending(
                    conn,
                    self._conns.js,
                    state,
                    options,
                    links,
                    "scheduler",
                    wait_projected=self._wait_projected,
                )
                log.info("scheduled campaign %s started", row["id"])


async def serve(settings: SenderSettings, stop: asyncio.Event) -> None:
    service = SenderService(settings)
    await run_with_health(
        service.run, service.check, settings.sender_host, settings.sender_port, stop
    )
