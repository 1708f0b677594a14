"""The projector service: keeps the read models up to date, serves /healthz and /readyz."""

from __future__ import annotations

import asyncio
import logging

from nats.js.errors import NotFoundError

from pigeon_common.backoff import Backoff
from pigeon_common.health import run_with_health
from pigeon_common.jetstream import EVENTS_STREAM
from pigeon_common.runtime import (
    Boot,
    Connections,
    Readiness,
    check_live,
    pause,
    start,
    until_stopped,
)
from pigeon_projector import metrics
from pigeon_projector.message_states import STATES_SQL
from pigeon_projector.projection import SQL
from pigeon_projector.projector import CHECKPOINT_SQL, AfterCommit, Projector, stream_last_seq
from pigeon_projector.rebuild import REBUILD_SQL
from pigeon_projector.settings import ProjectorSettings

log = logging.getLogger(__name__)
# The rebuild's queries too: `pigeon projector rebuild` runs without a start-up of its own.
BOOT = Boot(
    "pigeon-projector",
    (SQL, STATES_SQL, CHECKPOINT_SQL, REBUILD_SQL),
    pool_size=2,
)


class ProjectorService:
    def __init__(
        self, settings: ProjectorSettings, after_commit: AfterCommit | None = None
    ) -> None:
        self.settings = settings
        self.readiness = Readiness()
        self._after_commit = after_commit
        self._conns: Connections | None = None
        self._projector: Projector | None = None

    async def check(self) -> Readiness:
        if self._conns is not None:
            await check_live(self._conns, self.readiness)
            if self.readiness.ready and not (self._projector and self._projector.running):
                self.readiness.reason = "projector not running"
        return self.readiness

    async def refresh_metrics(self) -> None:
        """Before a scrape: the stream's last sequence against the checkpoint, the age of
        the oldest event waiting, and the copies the read model says are owed."""
        if self._conns is None or self._projector is None:
            return
        js = self._conns.js
        applied = self._projector.checkpoint
        last = await stream_last_seq(js)
        oldest_at = None
        if last > applied:
            try:
                waiting = await js.get_msg(EVENTS_STREAM, applied + 1)
                oldest_at = waiting.time.timestamp() if waiting.time else None
            except NotFoundError:  # removed by the stream's limits meanwhile
                pass
        metrics.record_lag(last, applied, oldest_at)
        async with self._conns.pool.acquire() as conn:
            metrics.COPIES_PENDING.set(await conn.fetchval(SQL.copies_pending))

    async def run(self, stop: asyncio.Event) -> None:
        """Project until `stop` is set, reconnecting after any failure."""
        backoff = Backoff()
        self._conns = await until_stopped(start(self.settings, BOOT, self.readiness), stop)
        if self._conns is None:
            return
        try:
            while not stop.is_set():
                self._projector = Projector(
                    self._conns.pool,
                    self._conns.nc,
                    self._conns.js,
                    batch_size=self.settings.projector_batch_size,
                    after_commit=self._after_commit,
                )
                self.readiness.reason = None
                try:
                    await self._projector.run(stop)
                    backoff.reset()
                except Exception as exc:
                    self.readiness.reason = f"projector failing: {exc}"
                    delay = backoff.next_delay()
                    log.warning("projector stopped (%s); restarting in %.1fs", exc, delay)
                    await pause(stop, delay)
        finally:
            await self._conns.close()


async def serve(settings: ProjectorSettings, stop: asyncio.Event) -> None:
    """Run the projector and its health endpoints until `stop` is set."""
    service = ProjectorService(settings)
    await run_with_health(
        service.run,
        service.check,
        settings.projector_host,
        settings.projector_port,
        stop,
        refresh=service.refresh_metrics,
    )
