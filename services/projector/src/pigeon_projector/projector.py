"""The projector: applies the EVENTS stream to the read models, exactly once.

Each batch runs in one transaction that (1) takes the projector lock and reads the
checkpoint, (2) applies only events past it, (3) stores the new checkpoint and notifies
`pigeon_projected`: a round trip each, besides the writes. The consumer is acknowledged
after the commit; if the process dies between commit and ack, the redelivered events are
at or below the checkpoint and are skipped. The checkpoint, not the consumer, is the
position: a restart starts a new consumer right after it. For the same reason the commit
does not wait for PostgreSQL's WAL flush (asynchronous commit): a database crash can lose
only whole last batches, their checkpoint with them, and they are applied again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from asyncio import FIRST_COMPLETED
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from pigeon_common.events import EVENT_SUBJECT_PREFIX, UnknownEventError, decode_event
from pigeon_common.jetstream import EVENTS_STREAM
from pigeon_common.queries import Queries
from pigeon_common.read_models import PROJECTED_CHANNEL, PROJECTION, read_checkpoint
from pigeon_projector import message_states, metrics
from pigeon_projector.projection import SQL as PROJECTION_SQL
from pigeon_projector.projection import Write, group_writes, rows_of, writes_for_event
from pigeon_projector.pull import BatchPuller, consumer_pending, stream_sequence

log = logging.getLogger(__name__)

UPSERT_RECIPIENTS = PROJECTION_SQL.upsert_recipients
CHECKPOINT_SQL = Queries.from_package("pigeon_projector", "checkpoint.sql")
PROJECTOR_LOCK_KEY = 7_246_371_002
# Rows of writes decoded between two turns of the event loop (see decode_messages): a
# small event is one row, an import's event a thousand. Each reply of PostgreSQL to the
# batch in flight waits for the slice being decoded, a dozen of them per transaction:
# `bench/project.py` ratio 0.62 with slices of 200 events, 0.83 with 4.
DECODE_SLICE_ROWS = 4
# Decoding runs ahead of the transactions by this many batches at most.
DECODED_AHEAD = 2
# Writes in one transaction at most, whatever the events: an import's events carry up to
# a thousand recipients each, and a thousand of them in one go would hold a million rows
# in memory.
MAX_BATCH_WRITES = 10_000


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back from the stream, with its stream sequence."""

    seq: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """One stored event turned into its writes (pure work, done before the transaction):
    the writes, the messages whose state it touches, or a skip record when it cannot be
    applied."""

    seq: int
    writes: list[Write]
    touched: list[message_states.Pair]
    skip: tuple[int, str, str] | None = None


def decode(event: StoredEvent) -> DecodedEvent:
    try:
        fact, payload = decode_event(event.raw)
        writes = writes_for_event(event.seq, payload, fact.occurred_at, fact)
        writes += message_states.writes_for(payload)
        return DecodedEvent(event.seq, writes, message_states.touched_by(payload))
    except (UnknownEventError, ValidationError, ValueError) as exc:
        event_type = exc.event_type if isinstance(exc, UnknownEventError) else "<undecodable>"
        log.error("skipping event seq=%d type=%s: %s", event.seq, event_type, exc)
        return DecodedEvent(event.seq, [], [], (event.seq, event_type, str(exc)[:2000]))


async def apply_batch(
    conn: asyncpg.Connection, batch: Sequence[StoredEvent], projection: str = PROJECTION
) -> int:
    """Apply a batch in one transaction; events at or below the checkpoint are skipped.

    Returns the checkpoint after the batch.
    """
    return await apply_decoded(conn, [decode(event) for event in batch], projection)


async def apply_decoded(
    conn: asyncpg.Connection,
    batch: Sequence[DecodedEvent],
    projection: str = PROJECTION,
    *,
    lock_key: int = PROJECTOR_LOCK_KEY,
    notify: bool = True,
) -> int:
    """`apply_batch` of events decoded beforehand. A rebuild's shadow batches take their
    own lock and announce nothing (readers do not see the shadow tables)."""
    async with conn.transaction():
        last = await conn.fetchval(CHECKPOINT_SQL.lock_and_checkpoint, lock_key, projection)
        if last is None:  # a new projection: the statement above took no lock
            await conn.execute(CHECKPOINT_SQL.projector_lock, lock_key)
            last = await conn.fetchval(CHECKPOINT_SQL.checkpoint_for_update, projection)
            if last is None:
                last = 0
                await conn.execute(CHECKPOINT_SQL.insert_checkpoint, projection)
        fresh = [event for event in batch if event.seq > last]
        if not fresh:
            return int(last)
        writes: list[Write] = []
        touched: list[message_states.Pair] = []
        skipped: list[tuple[int, str, str]] = []
        for event in fresh:
            writes += event.writes
            touched += event.touched
            if event.skip is not None:
                skipped.append(event.skip)
        for sql, args in group_writes(writes):
            if sql == UPSERT_RECIPIENTS:
                # It returns the pairs whose states it left to the refresh.
                (columns,) = args
                touched += [(row[0], row[1]) for row in await conn.fetch(sql, *columns)]
            elif len(args) == 1:
                await conn.execute(sql, *args[0])
            else:
                await conn.executemany(sql, args)
        # After every other write: the states are computed from the tables just written.
        await message_states.refresh(conn, touched)
        if skipped:
            await conn.executemany(CHECKPOINT_SQL.insert_skipped, skipped)
        new_last = max(event.seq for event in fresh)
        if notify:
            await conn.execute(
                CHECKPOINT_SQL.save_checkpoint_and_notify, projection, new_last, PROJECTED_CHANNEL
            )
        else:
            await conn.execute(CHECKPOINT_SQL.save_checkpoint, projection, new_last)
        return new_last


def weight(event: DecodedEvent) -> int:
    """What an event costs a batch: the rows its writes change (at least one)."""
    return max(1, sum(rows_of(write) for write in event.writes))


def split_by_writes(
    events: Sequence[DecodedEvent], max_writes: int = MAX_BATCH_WRITES
) -> list[list[DecodedEvent]]:
    """Consecutive batches of at most `max_writes` writes (an event above it alone)."""
    batches: list[list[DecodedEvent]] = []
    size = 0
    for event in events:
        if not batches or size + weight(event) > max_writes:
            batches.append([])
            size = 0
        batches[-1].append(event)
        size += weight(event)
    return batches


async def decode_messages(msgs: Sequence[Msg]) -> list[DecodedEvent]:
    """Decode pulled messages, giving the event loop back every DECODE_SLICE_ROWS rows of
    writes, so the batch in flight at PostgreSQL moves on while the next one is decoded."""
    decoded: list[DecodedEvent] = []
    rows = 0
    for m in msgs:
        event = decode(StoredEvent(stream_sequence(m.reply), m.data))
        decoded.append(event)
        rows += weight(event)
        if rows >= DECODE_SLICE_ROWS:
            rows = 0
            await asyncio.sleep(0)
    return decoded


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
            max_ack_pending=self._batch_size * (DECODED_AHEAD + 3),
            inactive_threshold=60.0,
            ack_wait=60.0,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Project until `stop` is set.

        Two tasks: one pulls and decodes events ahead (up to DECODED_AHEAD batches), the
        other applies what is decoded, up to a batch per transaction, and acknowledges
        after the commit. The decoding of the next events runs while PostgreSQL works on
        this batch, and a batch is as big as what arrived meanwhile: small when idle (a
        write is seen at once), full under load.
        """
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
            ahead = _Ahead(self._batch_size * DECODED_AHEAD)
            feeder = asyncio.create_task(self._feed(puller, ahead, stop))
            self.running = True
            try:
                while not stop.is_set():
                    taken = await ahead.take(self._batch_size, feeder, stop)
                    if not taken:
                        continue
                    before = self.checkpoint
                    self.checkpoint = await apply_decoded(conn, [event for event, _ in taken])
                    metrics.BATCHES.inc()
                    metrics.EVENTS_APPLIED.inc(max(self.checkpoint - before, 0))
                    metrics.APPLIED_SEQUENCE.set(self.checkpoint)
                    if self._after_commit is not None:
                        await self._after_commit(self.checkpoint)
                    await taken[-1][1].ack()
            finally:
                self.running = False
                feeder.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feeder
                await puller.stop()

    async def _feed(self, puller: BatchPuller, ahead: _Ahead, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await ahead.room()
            msgs = await puller.next_batch(self._batch_size, timeout=1.0)
            if msgs:
                ahead.put(list(zip(await decode_messages(msgs), msgs, strict=True)))


class _Ahead:
    """Decoded events waiting for their transaction, in stream order, each with the
    message to acknowledge once it is committed."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: deque[tuple[DecodedEvent, Msg]] = deque()
        self._weight = 0  # the waiting events' writes
        self._caught_up = False
        self._arrived = asyncio.Event()
        self._taken = asyncio.Event()

    async def room(self) -> None:
        """Wait until fewer than `limit` events (and DECODED_AHEAD batches' writes) wait."""
        while len(self._items) >= self._limit or self._weight >= DECODED_AHEAD * MAX_BATCH_WRITES:
            self._taken.clear()
            await self._taken.wait()

    def put(self, items: list[tuple[DecodedEvent, Msg]]) -> None:
        self._items.extend(items)
        self._weight += sum(weight(event) for event, _ in items)
        # Nothing more in the stream for now: what is here should not wait for a full batch.
        self._caught_up = consumer_pending(items[-1][1].reply) == 0
        self._arrived.set()

    async def take(
        self, limit: int, feeder: asyncio.Task[None], stop: asyncio.Event
    ) -> list[tuple[DecodedEvent, Msg]]:
        """Up to `limit` events and MAX_BATCH_WRITES writes: a full batch while the stream
        has more, else what is here, waiting a second at most; raises what stopped the
        feeder."""
        while (
            len(self._items) < limit
            and self._weight < MAX_BATCH_WRITES
            and not (self._items and self._caught_up)
        ):
            self._arrived.clear()
            arrived = asyncio.ensure_future(self._arrived.wait())
            await asyncio.wait({arrived, feeder}, timeout=1.0, return_when=FIRST_COMPLETED)
            if not arrived.done():
                arrived.cancel()
                if not feeder.done():
                    break  # a second without news: take what is here
            if feeder.done() and not stop.is_set():
                feeder.result()
                raise RuntimeError("the event feeder stopped")
            if stop.is_set():
                break
        taken: list[tuple[DecodedEvent, Msg]] = []
        size = 0
        while self._items and len(taken) < limit:
            cost = weight(self._items[0][0])
            if taken and size + cost > MAX_BATCH_WRITES:
                break
            taken.append(self._items.popleft())
            size += cost
        self._weight -= size
        self._taken.set()
        return taken


async def stream_last_seq(js: JetStreamContext) -> int:
    info = await js.stream_info(EVENTS_STREAM)
    return int(info.state.last_seq)
