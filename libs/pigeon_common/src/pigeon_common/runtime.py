"""What every service does at start (`start`): open NATS and PostgreSQL (retrying with
backoff), provision the streams, wait for the database to be migrated, prepare the
service's named queries (so a typo fails at boot, not on first use), and say whether it
is ready and, if not, why."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from pigeon_common import collector, db, jetstream
from pigeon_common.backoff import Backoff
from pigeon_common.queries import Queries
from pigeon_common.settings import SharedSettings
from pigeon_common.shared_sql import SQL

log = logging.getLogger(__name__)
T = TypeVar("T")
DRAIN_TIMEOUT_SEC = 5.0


@dataclass
class Readiness:
    """A service's answer to /readyz: ready, or the reason it is not."""

    reason: str | None = "starting"
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.reason is None


@dataclass
class Connections:
    """The shared clients a service is handed; it closes them with `close()`."""

    pool: asyncpg.Pool
    nc: NatsClient
    js: JetStreamContext

    async def close(self) -> None:
        # Drain lets in-flight publishes finish, but waits on open pull requests: bound it.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.nc.drain(), timeout=DRAIN_TIMEOUT_SEC)
        with contextlib.suppress(Exception):
            await self.nc.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pool.close(), timeout=DRAIN_TIMEOUT_SEC)


async def open_connections(
    database_url: str,
    nats_url: str,
    *,
    name: str,
    readiness: Readiness,
    pool_size: int = 10,
    replicas: int = 1,
    reconnect_buffer: bool = False,
) -> Connections:
    """Connect to both servers and provision the streams; retries until it succeeds.
    `reconnect_buffer`: see `jetstream.connect_nats`."""
    readiness.reason = "waiting for NATS"
    nc = await jetstream.connect_nats(nats_url, name=name, reconnect_buffer=reconnect_buffer)
    js = nc.jetstream()
    backoff = Backoff()
    while True:
        try:
            changed = await jetstream.provision(js, replicas)
            for line in changed:
                log.info("%s", line)
            break
        except Exception as exc:
            readiness.reason = f"JetStream not available: {exc}"
            delay = backoff.next_delay()
            log.warning("JetStream not available (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
    readiness.reason = "waiting for PostgreSQL"
    pool = await db.open_pool(database_url, max_size=pool_size)
    return Connections(pool=pool, nc=nc, js=js)


@dataclass(frozen=True)
class Boot:
    """How one service starts: its client name on NATS, its pool size, and the named
    queries it prepares (pigeon_common's shared ones are always added). `setup` runs
    first, in the same rolled-back transaction, for queries that need a session object
    such as a temporary table."""

    name: str
    queries: tuple[Queries, ...] = ()
    pool_size: int = 10
    setup: tuple[str, ...] = ()
    reconnect_buffer: bool = False

    @property
    def all_queries(self) -> tuple[Queries, ...]:
        return (SQL, *self.queries)


async def start(settings: SharedSettings, boot: Boot, readiness: Readiness) -> Connections:
    """The one start-up path of the services: connect (retrying until both servers
    answer), wait until the database is migrated, prepare every named query, then tune
    the garbage collector for a service (pigeon_common.collector).

    Raises QueryError when a query does not prepare on the migrated schema: a bug in
    this release that no retry can mend, so the service stops at start and says which.
    """
    database_url, nats_url = settings.require_servers()
    jetstream.configure_publish_retry(settings.publish_retry_sec)
    conns = await open_connections(
        database_url,
        nats_url,
        name=boot.name,
        readiness=readiness,
        pool_size=boot.pool_size,
        replicas=settings.jetstream_replicas,
        reconnect_buffer=boot.reconnect_buffer,
    )
    try:
        await prepare_queries(conns.pool, boot, readiness)
    except BaseException:
        await conns.close()
        raise
    collector.tune_for_service()
    return conns


async def prepare_queries(pool: asyncpg.Pool, boot: Boot, readiness: Readiness) -> None:
    """Prepare the service's queries once the database has every migration this code
    knows; until then (or while PostgreSQL is away) say why and retry."""
    backoff = Backoff()
    while True:
        try:
            async with pool.acquire() as conn:
                pending = await db.pending_migrations(conn)
                if not pending:
                    await _prepare(conn, boot)
                    return
            readiness.reason = (
                f"database not migrated (run `pigeon migrate`): {', '.join(pending)} pending"
            )
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            readiness.reason = f"PostgreSQL not reachable: {exc}"
        delay = backoff.next_delay()
        log.warning("%s; retrying in %.1fs", readiness.reason, delay)
        await asyncio.sleep(delay)


async def _prepare(conn: asyncpg.Connection, boot: Boot) -> None:
    # In a transaction that is rolled back: `setup` leaves nothing behind.
    transaction = conn.transaction()
    await transaction.start()
    try:
        for sql in boot.setup:
            await conn.execute(sql)
        for queries in boot.all_queries:
            await queries.prepare_all(conn)
    finally:
        await transaction.rollback()


async def until_stopped(awaitable: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """The awaitable's result, or None if `stop` is set first (the awaitable is cancelled)."""
    task = asyncio.ensure_future(awaitable)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def check_live(conns: Connections, readiness: Readiness) -> None:
    """Refresh readiness from the clients' state (NATS reconnecting, PostgreSQL down)."""
    if not conns.nc.is_connected:
        readiness.reason = "NATS connection lost; reconnecting"
        return
    try:
        async with conns.pool.acquire(timeout=2) as conn:
            await conn.fetchval(SQL.ping)
    except Exception as exc:
        readiness.reason = f"PostgreSQL not reachable: {exc}"
        return
    readiness.reason = None


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if `stop` is set meanwhile; True when it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()
