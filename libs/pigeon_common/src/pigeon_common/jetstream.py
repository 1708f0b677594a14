"""NATS JetStream: one way to connect, provision and publish, used by every service.

Provisioning is idempotent: a stream that exists with the wanted configuration is left
alone, one whose configuration drifted is updated in place. Every publish carries a
`Nats-Msg-Id`, so a retried publish inside the duplicate window is stored once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from pigeon_common.backoff import Backoff
from pigeon_common.events import EVENT_SUBJECT_PREFIX, Envelope
from pigeon_common.metrics import EVENTS as EVENT_COUNTS

log = logging.getLogger(__name__)


class Header:
    """NATS header names used by MC Pigeon."""

    MSG_ID = "Nats-Msg-Id"


EVENTS_STREAM = "EVENTS"
JOBS_STREAM = "JOBS"
JOB_SUBJECT_PREFIX = "pigeon.jobs"
DUPLICATE_WINDOW_SEC = 300.0
# Core NATS request answered by one imap-sync replica: "read this mailbox's bounce folder
# now" (`{"mailbox_id": ...}` in, the sync's report out).
IMAP_SYNC_NOW_SUBJECT = "pigeon.imap_sync.now"


@dataclass(frozen=True)
class StreamSpec:
    """The part of a stream's configuration MC Pigeon owns and keeps in shape."""

    name: str
    subjects: tuple[str, ...]
    retention: RetentionPolicy
    duplicate_window_sec: float
    description: str

    def config(self, replicas: int) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            description=self.description,
            subjects=list(self.subjects),
            retention=self.retention,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window_sec,
            num_replicas=replicas,
        )

    def matches(self, config: StreamConfig, replicas: int) -> bool:
        return (
            sorted(config.subjects or []) == sorted(self.subjects)
            and config.retention == self.retention
            and config.storage == StorageType.FILE
            and abs((config.duplicate_window or 0) - self.duplicate_window_sec) < 0.001
            and (config.num_replicas or 1) == replicas
            and config.description == self.description
        )


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec(
        name=EVENTS_STREAM,
        subjects=(f"{EVENT_SUBJECT_PREFIX}.>",),
        retention=RetentionPolicy.LIMITS,
        duplicate_window_sec=DUPLICATE_WINDOW_SEC,
        description="MC Pigeon event store: every fact, kept.",
    ),
    StreamSpec(
        name=JOBS_STREAM,
        subjects=(f"{JOB_SUBJECT_PREFIX}.>",),
        retention=RetentionPolicy.WORK_QUEUE,
        duplicate_window_sec=DUPLICATE_WINDOW_SEC,
        description="MC Pigeon work queue: send-chunk jobs.",
    ),
)


async def connect_nats(
    url: str,
    *,
    name: str,
    backoff: Backoff | None = None,
    attempts: int | None = None,
    reconnect_buffer: bool = False,
) -> NatsClient:
    """Connect to NATS, retrying with backoff (one log line per failure, no traceback).

    `attempts=None` retries forever; once connected, nats-py reconnects by itself.
    No reconnect buffer by default: a publish while reconnecting fails at once instead of
    being kept and sent after the reconnect, when its caller has already answered "not
    stored" (an API 503, a tracker 503) and the client may retry: a buffered copy would
    then be stored twice. `reconnect_buffer=True` restores nats-py's buffering.
    """
    backoff = backoff or Backoff()
    servers = [part.strip() for part in url.split(",") if part.strip()]
    attempt = 0
    while True:
        attempt += 1
        try:
            return await nats.connect(
                servers=servers,
                name=name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                **({} if reconnect_buffer else {"pending_size": 0}),
            )
        except Exception as exc:
            if attempts is not None and attempt >= attempts:
                raise
            delay = backoff.next_delay()
            log.warning("NATS at %s not reachable (%s); retrying in %.1fs", url, exc, delay)
            await asyncio.sleep(delay)


async def provision(js: JetStreamContext, replicas: int = 1) -> list[str]:
    """Create or fix the streams; returns what it changed (empty when all was in shape)."""
    changed: list[str] = []
    for spec in STREAMS:
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(spec.config(replicas))
            changed.append(f"created stream {spec.name}")
            continue
        if not spec.matches(info.config, replicas):
            await js.update_stream(spec.config(replicas))
            changed.append(f"updated stream {spec.name}")
    return changed


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def subject_for(envelope: Envelope) -> str:
    return f"{EVENT_SUBJECT_PREFIX}.{envelope.type}"


async def publish_event(js: JetStreamContext, envelope: Envelope, msg_id: str | None = None) -> int:
    """Store one event; returns its stream sequence (the original one for a duplicate)."""
    try:
        ack = await js.publish(
            subject_for(envelope),
            encode(envelope),
            stream=EVENTS_STREAM,
            headers={Header.MSG_ID: msg_id or str(envelope.event_id)},
        )
    except BaseException:
        EVENT_COUNTS.failed(envelope.type)
        raise
    EVENT_COUNTS.stored(envelope.type)
    return int(ack.seq)


async def publish_events(js: JetStreamContext, envelopes: Sequence[Envelope]) -> list[int]:
    """Store many events with their acks awaited together; returns their sequences in order."""
    return await publish_events_with_ids(js, [(e, str(e.event_id)) for e in envelopes])


async def publish_event_nowait(
    js: JetStreamContext, envelope: Envelope, msg_id: str
) -> asyncio.Future[Any]:
    """Send one event under `msg_id`; the returned future is its ack (await it before
    counting the event as stored)."""
    try:
        future: asyncio.Future[Any] = await js.publish_async(
            subject_for(envelope),
            encode(envelope),
            stream=EVENTS_STREAM,
            headers={Header.MSG_ID: msg_id},
        )
    except BaseException:
        EVENT_COUNTS.failed(envelope.type)
        raise
    event_type = envelope.type
    future.add_done_callback(
        lambda done: EVENT_COUNTS.count(
            event_type, not done.cancelled() and done.exception() is None
        )
    )
    return future


async def publish_events_with_ids(
    js: JetStreamContext, envelopes: Sequence[tuple[Envelope, str]]
) -> list[int]:
    """Store many events, each under its own deterministic `Nats-Msg-Id`, with their acks
    awaited together; returns their sequences in order."""
    futures = [await publish_event_nowait(js, envelope, msg_id) for envelope, msg_id in envelopes]
    acks = await asyncio.gather(*futures)
    return [int(ack.seq) for ack in acks]
