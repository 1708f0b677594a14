"""The API's long-lived parts: settings, signers and, once connected, the servers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pigeon_api.admin.security import csrf_keys
from pigeon_api.errors import ApiError
from pigeon_api.login_guard import LoginGuard
from pigeon_api.settings import ApiSettings
from pigeon_common.auth import TokenSigner
from pigeon_common.events import EncodedEvent, Envelope, encoded
from pigeon_common.jetstream import publish_encoded
from pigeon_common.queries import Queries, QueryError
from pigeon_common.render import TrackingSigner
from pigeon_common.runtime import Boot, Connections, Readiness, check_live, start
from pigeon_common.secrets_box import SecretBox
from pigeon_common.watermark import ProjectionWatermark

log = logging.getLogger(__name__)
SQL = Queries.from_package("pigeon_api", "queries.sql")
BOOT = Boot("pigeon-api", (SQL,))


@dataclass
class ApiContext:
    """Everything a request handler needs; built once per app by `create_app`."""

    settings: ApiSettings
    signer: TokenSigner
    box: SecretBox
    tracking: TrackingSigner
    csrf: tuple[bytes, ...]  # the admin forms' keys, current first
    login: LoginGuard
    readiness: Readiness = field(default_factory=Readiness)
    conns: Connections | None = None
    watermark: ProjectionWatermark | None = None
    _task: asyncio.Task[None] | None = None
    # Run once connected, before the API says it is ready (e.g. adopting old data).
    on_connect: list[Callable[[Any, Any], Awaitable[object]]] = field(default_factory=list)
    # Called when the API cannot ever become ready (a query does not prepare); `fatal`
    # is the error.
    on_fatal: Callable[[], object] | None = None
    fatal: QueryError | None = None

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> ApiContext:
        keys = settings.keys()  # current first: signs and encrypts; the rest only verify
        return cls(
            settings=settings,
            signer=TokenSigner(keys),
            box=SecretBox(keys),
            tracking=TrackingSigner(keys),
            csrf=csrf_keys(keys),
            login=LoginGuard.create(
                settings.login_account_failures,
                settings.login_client_failures,
                settings.login_window_sec,
            ),
        )

    async def start(self) -> None:
        """Connect in the background; /readyz says why until it is done."""
        self._task = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        database_url, _ = self.settings.require_servers()
        try:
            conns = await start(self.settings, BOOT, self.readiness)
        except QueryError as exc:
            # A query of this release does not prepare: no retry mends it. Stay unready,
            # say why, and stop the server where one was given (`pigeon serve api`).
            self.readiness.reason = str(exc)
            self.fatal = exc
            log.error("%s", exc)
            if self.on_fatal is not None:
                self.on_fatal()
            return
        while True:
            try:
                async with conns.pool.acquire() as conn:
                    for hook in self.on_connect:
                        await hook(conn, conns.js)
                break
            except Exception as exc:
                self.readiness.reason = f"database not ready: {exc}"
                log.warning("%s", self.readiness.reason)
                await asyncio.sleep(2)
        watermark = ProjectionWatermark(database_url, conns.pool)
        await watermark.start()
        self.conns, self.watermark = conns, watermark
        self.readiness.reason = None
        log.info("api ready")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.watermark is not None:
            await self.watermark.close()
        if self.conns is not None:
            await self.conns.close()

    async def check_ready(self) -> Readiness:
        if self.conns is not None:
            await check_live(self.conns, self.readiness)
        return self.readiness

    def require(self) -> Connections:
        """The connections, or a 503 saying what the service is waiting for."""
        if self.conns is None:
            raise ApiError(503, "not_ready", f"service not ready: {self.readiness.reason}")
        return self.conns

    async def commit(self, envelope: Envelope) -> bool:
        """Store one event, then wait for the read models; False if they lag behind."""
        return await self.commit_many([envelope])

    async def commit_many(self, envelopes: list[Envelope]) -> bool:
        return await self.commit_encoded([encoded(e) for e in envelopes])

    async def commit_encoded(self, events: Iterable[EncodedEvent]) -> bool:
        """Store events already encoded (read as they are sent), then wait for the read
        models as `commit` does."""
        conns = self.require()
        try:
            seqs = await publish_encoded(conns.js, events)
        except Exception as exc:
            log.warning("event store unavailable: %s", exc)
            raise ApiError(
                503, "event_store_unavailable", "the change could not be stored; try again"
            ) from None
        if not seqs:
            return True
        return await self.wait_projected(max(seqs))

    async def wait_projected(self, seq: int) -> bool:
        """Wait until the read models contain `seq` (False when the wait timed out)."""
        assert self.watermark is not None
        return await self.watermark.wait_for(seq, self.settings.read_your_writes_timeout_sec)
