"""NATS JetStream: one way to connect, provision and publish, used by every service.

Provisioning is idempotent: a stream that exists with the wanted configuration is left
alone, one whose configuration drifted is updated in place. Every publish carries a
`Nats-Msg-Id`, so a retried publish inside the duplicate window is stored once.

Riding out a leader election: on a NATS cluster a stream whose leader died refuses
publishes ("no responders") for a few seconds until a new leader takes over. Every
publish here is retried with backoff and jitter, under the same `Nats-Msg-Id`, for at
most `publish_retry_sec()` (PIGEON_PUBLISH_RETRY_SEC); then `PublishFailedError` says
"not stored" and the caller answers 503 or naks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import (
    ConnectionReconnectingError,
    NoRespondersError,
    OutboundBufferLimitError,
    StaleConnectionError,
)
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import (
    APIError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)

from pigeon_common.backoff import Backoff
from pigeon_common.events import EVENT_SUBJECT_PREFIX, EncodedEvent, Envelope, encoded
from pigeon_common.metrics import EVENTS as EVENT_COUNTS

log = logging.getLogger(__name__)
T = TypeVar("T")


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
# How long one publish waits for its ack before it counts as unanswered (and is sent
# again under the same message id while the retry window lasts).
ACK_TIMEOUT_SEC = 5.0
DEFAULT_PUBLISH_RETRY_SEC = 10.0
RECONNECT_WAIT_SEC = 0.5
# A server that went silent (a partition, a dead host: no RST) is given up after two
# unanswered pings, so the client moves to another server within ~15 s, not minutes.
PING_INTERVAL_SEC = 5
MAX_OUTSTANDING_PINGS = 2
# JetStream's "temporarily unavailable" (no leader yet) and "no quorum" answers.
_UNAVAILABLE_CODES = frozenset({503})


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
    `url` may list every server of a cluster, comma-separated: the client is given all of
    them and, once connected, moves to another when its server goes away.
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
                reconnect_time_wait=RECONNECT_WAIT_SEC,
                ping_interval=PING_INTERVAL_SEC,
                max_outstanding_pings=MAX_OUTSTANDING_PINGS,
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


# Events in flight at once when many are stored together (their acks awaited in order).
PUBLISH_WINDOW = 32


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def subject_for(envelope: Envelope) -> str:
    return f"{EVENT_SUBJECT_PREFIX}.{envelope.type}"


class PublishFailedError(Exception):
    """Raised when a publish was not confirmed as stored within the retry window (NATS
    away, no stream leader, JetStream refusing); `reason` says the last failure. The
    caller answers "not stored" (HTTP 503, a job nak)."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"not stored on {subject}: {reason}")
        self.subject = subject
        self.reason = reason


_REFUSED = (
    NoStreamResponseError,
    ServiceUnavailableError,
    NoRespondersError,
    ConnectionReconnectingError,
    OutboundBufferLimitError,
    StaleConnectionError,
)
_UNANSWERED = (NatsTimeoutError, TimeoutError)


def is_refused(exc: BaseException) -> bool:
    """True when `exc` proves the message was not stored and a retry may succeed: no
    stream leader answered, JetStream is temporarily unavailable, the client is between
    servers. (An ack that never came is not proof: see `is_unanswered`.)"""
    if isinstance(exc, _REFUSED):
        return True
    return isinstance(exc, APIError) and getattr(exc, "code", None) in _UNAVAILABLE_CODES


def is_unanswered(exc: BaseException) -> bool:
    """True when no ack came in time: the message may or may not be stored, so only a
    retry under the same `Nats-Msg-Id` (deduplicated by JetStream) is safe."""
    return isinstance(exc, _UNANSWERED)


def is_retryable(exc: BaseException) -> bool:
    return is_refused(exc) or is_unanswered(exc)


_retry_sec = DEFAULT_PUBLISH_RETRY_SEC


def configure_publish_retry(seconds: float) -> None:
    """Set this process's retry window for refused publishes (from the settings)."""
    global _retry_sec  # one process-wide policy, set once at start
    _retry_sec = seconds


def publish_retry_sec() -> float:
    return _retry_sec


async def retry_refused(
    what: str, attempt: Callable[[], Awaitable[T]], *, within: float | None = None
) -> T:
    """Run `attempt` until it succeeds, retrying failures `is_retryable` says may pass
    with backoff and jitter for at most `within` seconds (the process's window by
    default); then PublishFailedError. `attempt` must be safe to repeat (same message
    id, an idempotent write)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (publish_retry_sec() if within is None else within)
    backoff = Backoff(initial=0.1, maximum=1.0)
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if not is_retryable(exc):
                raise
            delay = backoff.next_delay()
            if loop.time() + delay > deadline:
                raise PublishFailedError(what, f"{type(exc).__name__}: {exc}") from exc
            log.info("publish on %s refused (%s); retrying in %.2fs", what, exc, delay)
            await asyncio.sleep(delay)


async def store(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    headers: dict[str, str],
    *,
    stream: str | None = None,
) -> PubAck:
    """Publish and wait for the ack, retrying while refused (see `retry_refused`);
    `headers` should carry a `Nats-Msg-Id` so a retry after a lost ack is stored once."""

    async def attempt() -> PubAck:
        return await js.publish(
            subject, payload, timeout=ACK_TIMEOUT_SEC, stream=stream, headers=dict(headers)
        )

    return await retry_refused(subject, attempt)


async def store_nowait(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    headers: dict[str, str] | None = None,
    *,
    stream: str | None = None,
    within: float | None = None,
) -> Awaitable[PubAck]:
    """Send now, confirm later: the returned awaitable is the ack (await it, once, before
    counting the message as stored). A refused or unanswered first send is retried
    inside that awaitable, within the retry window counted from now (`within` seconds
    instead of the process's window, for writes that must not give up early)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        first: asyncio.Future[PubAck] | None = await js.publish_async(
            subject, payload, stream=stream, headers=dict(headers) if headers else None
        )
    except Exception as exc:
        if not is_retryable(exc):
            raise
        first = None

    async def confirmed() -> PubAck:
        if first is not None:
            try:
                async with asyncio.timeout(ACK_TIMEOUT_SEC):
                    return await first
            except Exception as exc:
                if not is_retryable(exc):
                    raise
        window = publish_retry_sec() if within is None else within
        left = max(0.0, window - (loop.time() - started))

        async def attempt() -> PubAck:
            return await js.publish(
                subject,
                payload,
                timeout=ACK_TIMEOUT_SEC,
                stream=stream,
                headers=dict(headers) if headers else None,
            )

        return await retry_refused(subject, attempt, within=left)

    return confirmed()


async def publish_event(js: JetStreamContext, envelope: Envelope, msg_id: str | None = None) -> int:
    """Store one event; returns its stream sequence (the original one for a duplicate).
    Raises PublishFailedError when it could not be stored within the retry window."""
    headers = {Header.MSG_ID: msg_id or str(envelope.event_id)}
    try:
        ack = await store(
            js, subject_for(envelope), encode(envelope), headers, stream=EVENTS_STREAM
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
    js: JetStreamContext, envelope: Envelope, msg_id: str, *, within: float | None = None
) -> Awaitable[PubAck]:
    """Send one event under `msg_id`; the returned awaitable is its ack (await it before
    counting the event as stored; it raises PublishFailedError when it was not)."""
    return await publish_encoded_nowait(js, encoded(envelope, msg_id), within=within)


async def publish_encoded_nowait(
    js: JetStreamContext, event: EncodedEvent, *, within: float | None = None
) -> Awaitable[PubAck]:
    """`publish_event_nowait` of an event already encoded."""
    headers = {Header.MSG_ID: event.msg_id}
    subject = f"{EVENT_SUBJECT_PREFIX}.{event.event_type}"
    try:
        ack = await store_nowait(
            js, subject, event.payload, headers, stream=EVENTS_STREAM, within=within
        )
    except BaseException:
        EVENT_COUNTS.failed(event.event_type)
        raise
    return _counted(ack, event.event_type)


async def publish_encoded(
    js: JetStreamContext, events: Iterable[EncodedEvent], *, window: int = PUBLISH_WINDOW
) -> list[int]:
    """Store encoded events, up to `window` of them awaiting their acks at a time; their
    sequences in order. `events` is read as it is sent (it may be a generator over a
    large import), and an event's bytes are let go once it is stored, so a million
    recipients never sit in memory at once."""
    seqs: list[int] = []
    waiting: deque[Awaitable[PubAck]] = deque()
    for event in events:
        if len(waiting) >= window:
            seqs.append(int((await waiting.popleft()).seq))
        waiting.append(await publish_encoded_nowait(js, event))
    while waiting:
        seqs.append(int((await waiting.popleft()).seq))
    return seqs


async def _counted(ack: Awaitable[PubAck], event_type: str) -> PubAck:
    """`ack`, counting the event stored or failed once it is known which."""
    try:
        result = await ack
    except BaseException:
        EVENT_COUNTS.failed(event_type)
        raise
    EVENT_COUNTS.stored(event_type)
    return result


async def publish_events_with_ids(
    js: JetStreamContext, envelopes: Sequence[tuple[Envelope, str]]
) -> list[int]:
    """Store many events, each under its own deterministic `Nats-Msg-Id`, with their acks
    awaited together; returns their sequences in order."""
    return await publish_encoded(js, [encoded(envelope, msg_id) for envelope, msg_id in envelopes])
