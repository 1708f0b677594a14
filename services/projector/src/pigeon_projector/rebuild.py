"""A rebuild beside the live read models, then a swap in one short transaction.

Readers keep reading the live tables for the whole replay. The rebuild:

1. creates the schema `pigeon_rebuild` with an empty copy of every read-model table
   (columns, defaults, checks, keys and indexes under their own names) and of the views
   and functions of `public` that depend on them, from their catalog definitions;
2. replays the stream from sequence 1 into those copies (its connection's search_path
   puts the shadow schema first, so the projection's unqualified SQL writes there), in
   batches that hold their own checkpoint (`read_models_rebuild`) and announce nothing;
3. catches up with the stream while the live projector keeps applying new events to
   the live tables;
4. swaps: one transaction takes the projector's lock (the live projector waits between
   two batches), applies what the live tables have and the copies not yet, drops the
   live tables, views and functions, moves the copies into `public`, sets the live
   checkpoint and announces it. Only this transaction blocks readers, for as long as
   its catalog changes take (milliseconds), not for the replay.

A rebuild that fails before the swap leaves the live tables untouched; the next one
drops the half-built schema first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from pigeon_common.events import EVENT_SUBJECT_PREFIX
from pigeon_common.jetstream import EVENTS_STREAM
from pigeon_common.queries import Queries
from pigeon_common.read_models import PROJECTED_CHANNEL, PROJECTION, read_checkpoint
from pigeon_projector.projection import READ_MODEL_TABLES
from pigeon_projector.projector import (
    CHECKPOINT_SQL,
    PROJECTOR_LOCK_KEY,
    DecodedEvent,
    apply_decoded,
    decode_messages,
    split_by_writes,
    stream_last_seq,
)
from pigeon_projector.pull import BatchPuller

log = logging.getLogger(__name__)

REBUILD_SQL = Queries.from_package("pigeon_projector", "rebuild.sql")
SHADOW_SCHEMA = "pigeon_rebuild"
REBUILD_PROJECTION = "read_models_rebuild"
REBUILD_LOCK_KEY = 7_246_371_003
# The swap applies at most about this many events itself (while readers wait).
CATCH_UP_GAP = 500
CATCH_UP_ROUNDS = 5
# How long the swap waits for a reader's lock before it gives up (the live tables stay).
SWAP_LOCK_TIMEOUT = "30s"
FETCH_TIMEOUT_SEC = 5.0

# Called after each replayed batch with (sequence reached, sequence aimed at).
Progress = Callable[[int, int], Awaitable[None]]


class RebuildError(Exception):
    """Raised when the read models cannot be copied or the stream ends too early."""


@dataclass
class _Copies:
    """What was copied into the shadow schema besides the tables."""

    views: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)  # signatures in `public`


async def rebuild(
    conn: asyncpg.Connection,
    nc: NatsClient,
    js: JetStreamContext,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> int:
    """Replay the stream from sequence 1 beside the live read models, then swap them in.

    Returns the sequence the read models stand at after the swap.
    """
    await conn.execute("SET search_path = public")
    copies = await create_shadow(conn)
    replay = _Replay(conn, nc, js, batch_size, progress)
    swapped = False
    try:
        await conn.execute(f"SET search_path = {SHADOW_SCHEMA}, public")
        await replay.start()
        await replay.until(await stream_last_seq(js))
        for _ in range(CATCH_UP_ROUNDS):
            live = await stream_last_seq(js)
            if live - replay.reached <= CATCH_UP_GAP:
                break
            await replay.until(live)
        final = await _swap(conn, replay, copies)
        swapped = True
        return final
    finally:
        await replay.stop()
        await conn.execute("SET search_path = public")
        if not swapped:
            await drop_shadow(conn)


async def create_shadow(conn: asyncpg.Connection) -> _Copies:
    """The empty copies of the read models in SHADOW_SCHEMA (any older one dropped)."""
    copies = _Copies()
    async with conn.transaction():
        await conn.execute("SET LOCAL search_path = public")
        await conn.execute(f"DROP SCHEMA IF EXISTS {SHADOW_SCHEMA} CASCADE")
        await conn.execute(f"CREATE SCHEMA {SHADOW_SCHEMA}")
        await conn.execute(REBUILD_SQL.forget_checkpoint, REBUILD_PROJECTION)
        for table in READ_MODEL_TABLES:
            await _copy_table(conn, table)
        views = await conn.fetch(REBUILD_SQL.dependent_views, list(READ_MODEL_TABLES))
        typed = [*READ_MODEL_TABLES, *(v["name"] for v in views)]
        functions = await conn.fetch(REBUILD_SQL.dependent_functions, typed)
        await conn.execute(f"SET LOCAL search_path = {SHADOW_SCHEMA}, public")
        # Bodies are checked when called: a function may read a view not created yet.
        await conn.execute("SET LOCAL check_function_bodies = off")
        for function in functions:
            await conn.execute(_in_shadow_function(function["definition"]))
            copies.functions.append(function["signature"])
        await _copy_views(conn, [(v["name"], v["definition"]) for v in views])
        copies.views = [v["name"] for v in views]
    return copies


async def _copy_table(conn: asyncpg.Connection, table: str) -> None:
    await conn.execute(
        f"CREATE TABLE {SHADOW_SCHEMA}.{table}"
        f" (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES)"
    )
    # Keys and indexes under the live names, so later migrations find them after a swap.
    for constraint in await conn.fetch(REBUILD_SQL.table_constraints, f"public.{table}"):
        await conn.execute(
            f'ALTER TABLE {SHADOW_SCHEMA}.{table} ADD CONSTRAINT "{constraint["name"]}"'
            f" {constraint['definition']}"
        )
    for index in await conn.fetch(REBUILD_SQL.table_indexes, f"public.{table}"):
        await conn.execute(_in_shadow_index(index["definition"], table))


def _in_shadow_index(definition: str, table: str) -> str:
    """pg_get_indexdef's statement, on the shadow table."""
    live = f" ON public.{table} "
    if definition.count(live) != 1:
        raise RebuildError(f"cannot copy index of {table}: {definition}")
    return definition.replace(live, f" ON {SHADOW_SCHEMA}.{table} ")


def _in_shadow_function(definition: str) -> str:
    """pg_get_functiondef's statement, creating the function in the shadow schema."""
    live = "CREATE OR REPLACE FUNCTION public."
    if not definition.startswith(live):
        raise RebuildError(f"cannot copy function: {definition[:80]}")
    return f"CREATE FUNCTION {SHADOW_SCHEMA}.{definition.removeprefix(live)}"


async def _copy_views(conn: asyncpg.Connection, views: list[tuple[str, str]]) -> None:
    """Create the views in creation order; one that reads a view made later waits."""
    pending = views
    while pending:
        postponed: list[tuple[str, str]] = []
        failure: Exception | None = None
        for name, definition in pending:
            try:
                async with conn.transaction():
                    await conn.execute(f"CREATE VIEW {SHADOW_SCHEMA}.{name} AS {definition}")
            except asyncpg.PostgresError as exc:
                postponed.append((name, definition))
                failure = exc
        if len(postponed) == len(pending):
            raise RebuildError(f"cannot copy view {postponed[0][0]}: {failure}")
        pending = postponed


async def drop_shadow(conn: asyncpg.Connection) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {SHADOW_SCHEMA} CASCADE")
    await conn.execute(REBUILD_SQL.forget_checkpoint, REBUILD_PROJECTION)


async def _swap(conn: asyncpg.Connection, replay: _Replay, copies: _Copies) -> int:
    """Catch the copies up with the live tables and put them in their place."""
    async with conn.transaction():
        await conn.execute(CHECKPOINT_SQL.projector_lock, PROJECTOR_LOCK_KEY)
        live = await read_checkpoint(conn)
        await replay.until(live)
        final = max(live, replay.reached)
        await conn.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
        await conn.execute("SET LOCAL search_path = public")
        shadow_functions = [
            r["signature"] for r in await conn.fetch(REBUILD_SQL.shadow_functions, SHADOW_SCHEMA)
        ]
        if copies.views:
            await conn.execute(f"DROP VIEW {', '.join(f'public.{v}' for v in copies.views)}")
        for signature in copies.functions:
            await conn.execute(f"DROP FUNCTION public.{signature}")
        await conn.execute(f"DROP TABLE {', '.join(f'public.{t}' for t in READ_MODEL_TABLES)}")
        for signature in shadow_functions:
            await conn.execute(f"ALTER FUNCTION {signature} SET SCHEMA public")
        for view in copies.views:
            await conn.execute(f"ALTER VIEW {SHADOW_SCHEMA}.{view} SET SCHEMA public")
        for table in READ_MODEL_TABLES:
            await conn.execute(f"ALTER TABLE {SHADOW_SCHEMA}.{table} SET SCHEMA public")
        await conn.execute(f"DROP SCHEMA {SHADOW_SCHEMA}")
        await conn.execute(REBUILD_SQL.set_checkpoint, PROJECTION, final)
        await conn.execute(REBUILD_SQL.forget_checkpoint, REBUILD_PROJECTION)
        await conn.execute(CHECKPOINT_SQL.notify_projected, PROJECTED_CHANNEL, str(final))
    log.info("read models rebuilt up to event %d and swapped in", final)
    return final


class _Replay:
    """The stream from sequence 1 into the shadow tables, as far as asked each time."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        nc: NatsClient,
        js: JetStreamContext,
        batch_size: int,
        progress: Progress | None,
    ) -> None:
        self._conn = conn
        self._batch_size = batch_size
        self._progress = progress
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            filter_subject=f"{EVENT_SUBJECT_PREFIX}.>",
            inactive_threshold=60.0,
        )
        self._puller = BatchPuller(nc, js, EVENTS_STREAM, config, batch=batch_size)
        self._started = False
        self._early: list[DecodedEvent] = []  # pulled past the last target
        self.reached = 0

    async def start(self) -> None:
        await self._puller.start()
        self._started = True

    async def until(self, target: int) -> None:
        """Apply every event up to `target` (at least) to the shadow tables."""
        while self.reached < target:
            if self._early:
                decoded, self._early = self._early, []
            else:
                msgs = await self._puller.next_batch(self._batch_size, FETCH_TIMEOUT_SEC)
                if not msgs:
                    raise RebuildError(f"the stream ended at {self.reached}, expected {target}")
                decoded = await decode_messages(msgs)
            batch = [event for event in decoded if event.seq <= target]
            self._early = [event for event in decoded if event.seq > target]
            if not batch:
                break  # the next event is past the target: nothing up to it is left
            for part in split_by_writes(batch):
                self.reached = await apply_decoded(
                    self._conn,
                    part,
                    REBUILD_PROJECTION,
                    lock_key=REBUILD_LOCK_KEY,
                    notify=False,
                )
            if self._progress is not None:
                await self._progress(self.reached, target)

    async def stop(self) -> None:
        if self._started:
            await self._puller.stop()
