"""The projector's Prometheus metrics: how far the read models stand behind the stream,
and the Sent copies the read model says are still owed."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge

EVENTS_APPLIED = Counter(
    "pigeon_projector_events_applied_total",
    "Events the projector applied to the read models (batches' new events, committed).",
)
BATCHES = Counter("pigeon_projector_batches_total", "Batches of events the projector committed.")
APPLIED_SEQUENCE = Gauge(
    "pigeon_projector_applied_sequence",
    "The EVENTS stream sequence the read models stand at (the projector's checkpoint).",
)
STREAM_SEQUENCE = Gauge(
    "pigeon_projector_stream_sequence",
    "The EVENTS stream's last sequence, read at scrape time.",
)
LAG_EVENTS = Gauge(
    "pigeon_projector_lag_events",
    "Events stored in the stream and not yet applied to the read models.",
)
LAG_SECONDS = Gauge(
    "pigeon_projector_lag_seconds",
    "How long the oldest event not yet applied has been in the stream (0 when none waits).",
)
COPIES_PENDING = Gauge(
    "pigeon_projector_copies_pending",
    "Sent messages whose copy in the Sent folder could not be filed yet (read model).",
)


def lag(stream_seq: int, applied_seq: int) -> int:
    """Events waiting: never negative (a checkpoint read just after a newer stream
    sequence can pass it)."""
    return max(stream_seq - applied_seq, 0)


def record_lag(
    stream_seq: int, applied_seq: int, oldest_waiting_at: float | None, now: float | None = None
) -> None:
    """Set the lag gauges from one look at the stream."""
    waiting = lag(stream_seq, applied_seq)
    STREAM_SEQUENCE.set(stream_seq)
    APPLIED_SEQUENCE.set(applied_seq)
    LAG_EVENTS.set(waiting)
    if waiting == 0 or oldest_waiting_at is None:
        LAG_SECONDS.set(0)
    else:
        LAG_SECONDS.set(max((now or time.time()) - oldest_waiting_at, 0.0))
