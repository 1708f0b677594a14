"""The projector: applies the EVENTS stream to the read models, exactly once.

Each batch runs in one transaction that (1) takes the projector lock, (2) reads the
checkpoint, (3) applies only events past it, (4) stores the new checkpoint and
(5) notifies `pigeon_projected`. The consumer is acknowledged after the commit; if the
process dies between commit and ack, the redelivered events are at or below the
checkpoint and are skipped. The checkpoint, not the consumer, is the position: a
restart starts a new consumer right after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from pydantic_core import to_json

from pigeon_common.events import EVENT_SUBJECT_PREFIX, UnknownEventError, decode_event
from pigeon_common.jetstream import EVENTS_STREAM
from pigeon_common.pull import BatchPuller, stream_sequence
from pigeon_common.read_models import PROJECTED_CHANNEL, PROJECTION, read_checkpoint
from pigeon_projector import message_states, metrics
from pigeon_projector.projection import (
    READ_MODEL_TABLES,
    SQL,
    Write,
    group_writes,
    merge_recipient_rows,
    writes_for_event,
)

log = logging.getLogger(__name__)

PROJECTOR_LOCK_KEY = 7_246_371_002
# Recipient upserts in one batch from which the COPY path pays off.
COPY_THRESHOLD = 200


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back from the stream, with its stream sequence."""

    seq: int
    raw: bytes


def _decode(
    event: StoredEvent,
) -> tuple[list[Write], list[message_states.Pair], tuple[int, str, str] | None]:
    """Writes for one stored event and the messages whose state it touches, or a skip
    record when it cannot be applied."""
    try:
        fact, payload = decode_event(event.raw)
        writes = writes_for_event(event.seq, payload, fact.occurred_at, fact)
        writes += message_states.writes_for(payload)
        return writes, message_states.touched_by(payload), None
    except (UnknownEventError, ValidationError, ValueError) as exc:
        event_type = exc.event_type if isinstance(exc, UnknownEventError) else "<undecodable>"
        log.error("skipping event seq=%d type=%s: %s", event.seq, event_type, exc)
        return [], [], (event.seq, event_type, str(exc)[:2000])


async def apply_batch(
    conn: asyncpg.Connection, batch: Sequence[StoredEvent], projection: str = PROJECTION
) -> int:
    """Apply a batch in one transaction; events at or below the checkpoint are skipped.

    Returns the checkpoint after the batch.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", PROJECTOR_LOCK_KEY)
        last = await conn.fetchval(
            "SELECT last_seq FROM projection_checkpoints WHERE projection = $1 FOR UPDATE",
            projection,
        )
        if last is None:
            last = 0
            await conn.execute(
                "INSERT INTO projection_checkpoints (projection, last_seq) VALUES ($1, 0)",
                projection,
            )
        fresh = [event for event in batch if event.seq > last]
        if not fresh:
            return int(last)
        writes: list[Write] = []
        touched: list[message_states.Pair] = []
        skipped: list[tuple[int, str, str]] = []
        for event in fresh:
            event_writes, event_touched, skip = _decode(event)
            writes.extend(event_writes)
            touched.extend(event_touched)
            if skip is not None:
                skipped.append(skip)
        for sql, args in group_writes(writes):
            if sql == SQL.upsert_recipient and len(args) >= COPY_THRESHOLD:
                await _copy_upsert_recipients(conn, args)
            elif len(args) == 1:
                await conn.execute(sql, *args[0])
            else:
                await conn.executemany(sql, args)
        # After every other write: the states are computed from the tables just written.
        await message_states.refresh(conn, touched)
        if skipped:
            await conn.executemany(
                "INSERT INTO projection_skipped (seq, event_type, error) VALUES ($1, $2, $3)"
                " ON CONFLICT (seq) DO NOTHING",
                skipped,
            )
        new_last = max(event.seq for event in fresh)
        await conn.execute(
            "UPDATE projection_checkpoints SET last_seq = $2 WHERE projection = $1",
            projection,
            new_last,
        )
        await conn.execute("SELECT pg_notify($1, $2)", PROJECTED_CHANNEL, str(new_last))
        return new_last


async def _copy_upsert_recipients(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Many recipient upserts as COPY into a temporary table plus one INSERT ... SELECT:
    about a third faster than executemany for a large import."""
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS recipients_incoming (campaign_id uuid, id uuid,"
        " email text, name text, attributes text, created_at timestamptz,"
        " updated_at timestamptz) ON COMMIT DELETE ROWS"
    )
    await conn.execute("TRUNCATE recipients_incoming")
    await conn.copy_records_to_table(
        "recipients_incoming",
        records=[
            (c, i, e, n, to_json(a).decode(), created, updated)
            for c, i, e, n, a, created, updated in merge_recipient_rows(rows)
        ],
        columns=["campaign_id", "id", "email", "name", "attributes", "created_at", "updated_at"],
    )
    await conn.execute(SQL.upsert_recipients_from_incoming)


AfterCommit = Callable[[int], Awaitable[None]]


class Projector:
    """Pulls events after the checkpoint and applies them batch by batch."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        nc: NatsClient,
        js: JetStreamContext,
        *,
        batch_size: int = 1000,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self._pool = pool
        self._nc = nc
        self._js = js
        self._batch_size = batch_size
        self._after_commit = after_commit
        self.checkpoint = 0
        self.running = False

    def _consumer(self, start_seq: int) -> ConsumerConfig:
        return ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(start_seq, 1),
            ack_policy=AckPolicy.ALL,
            filter_subject=f"{EVENT_SUBJECT_PREFIX}.>",
            max_ack_pending=self._batch_size * 4,
            inactive_threshold=60.0,
            ack_wait=60.0,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Project until `stop` is set."""
        async with self._pool.acquire() as conn:
            self.checkpoint = await read_checkpoint(conn)
            puller = BatchPuller(
                self._nc,
                self._js,
                EVENTS_STREAM,
                self._consumer(self.checkpoint + 1),
                batch=self._batch_size,
            )
            await puller.start()
            self.running = True
            try:
                while not stop.is_set():
                    msgs = await puller.next_batch(self._batch_size, timeout=1.0)
                    if not msgs:
                        continue
                    batch = [StoredEvent(stream_sequence(m.reply), m.data) for m in msgs]
                    before = self.checkpoint
                    self.checkpoint = await apply_batch(conn, batch)
                    metrics.BATCHES.inc()
                    metrics.EVENTS_APPLIED.inc(max(self.checkpoint - before, 0))
                    metrics.APPLIED_SEQUENCE.set(self.checkpoint)
                    if self._after_commit is not None:
                        await self._after_commit(self.checkpoint)
                    await msgs[-1].ack()
            finally:
                self.running = False
                await puller.stop()


async def stream_last_seq(js: JetStreamContext) -> int:
    info = await js.stream_info(EVENTS_STREAM)
    return int(info.state.last_seq)


async def rebuild(
    conn: asyncpg.Connection, nc: NatsClient, js: JetStreamContext, batch_size: int = 1000
) -> int:
    """Empty the read models and replay the stream from sequence 1, in one transaction.

    Readers keep seeing the old tables until the commit (they wait on the TRUNCATE lock);
    a running projector waits on the projector lock and then skips what was replayed.
    Returns the sequence the read models now stand at.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", PROJECTOR_LOCK_KEY)
        await conn.execute(f"TRUNCATE {', '.join(READ_MODEL_TABLES)}")
        await conn.execute(
            "INSERT INTO projection_checkpoints (projection, last_seq) VALUES ($1, 0)"
            " ON CONFLICT (projection) DO UPDATE SET last_seq = 0",
            PROJECTION,
        )
        target = await stream_last_seq(js)
        if target == 0:
            return 0
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            filter_subject=f"{EVENT_SUBJECT_PREFIX}.>",
            inactive_threshold=60.0,
        )
        puller = BatchPuller(nc, js, EVENTS_STREAM, config, batch=batch_size)
        await puller.start()
        reached = 0
        try:
            while reached < target:
                msgs = await puller.next_batch(batch_size, timeout=5.0)
                if not msgs:
                    raise TimeoutError(f"stream ended at {reached}, expected {target}")
                batch = [
                    StoredEvent(seq, m.data)
                    for m in msgs
                    if (seq := stream_sequence(m.reply)) <= target
                ]
                if batch:
                    # apply_batch opens a savepoint inside this transaction.
                    reached = await apply_batch(conn, batch)
                if stream_sequence(msgs[-1].reply) >= target:
                    break
        finally:
            await puller.stop()
        return reached
