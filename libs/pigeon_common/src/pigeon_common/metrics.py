"""Prometheus metrics: the exposition every service serves at /metrics, and the counters
pigeon_common records itself (events stored in JetStream, or not).

Each service names its own metrics in its `metrics.py`; all of them live in
prometheus-client's default registry. A process started with `PROMETHEUS_MULTIPROC_DIR`
set (the tracker's worker processes) is in prometheus-client's multiprocess mode: every
process writes its values to files there, and a scrape of any one of them gathers all.
Like prometheus-client, the mode is read once, when this module is imported.

Counts on a hot path (every tracker request, every event published) go through a
`Tally`: a plain dict increment, added to the real counters when this process is scraped
(and, in multiprocess mode, every FLUSH_EVERY_SEC, so the other workers' scrapes see it):
prometheus-client's own increment takes a lock and, in multiprocess mode, writes to a
memory-mapped file, about 2 us each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
MULTIPROC_DIR: str | None = os.environ.get(MULTIPROC_DIR_ENV) or None
# The classic text format, which every Prometheus version reads (our names need nothing
# newer).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
METRICS_PATH = "/metrics"

FLUSH_EVERY_SEC = 1.0

# A hook a service runs before a scrape, to read what is cheaper to ask at scrape time
# than to keep current (a stream's last sequence, a count in the read model).
Refresh = Callable[[], Awaitable[None]]

EVENTS_STORED = Counter(
    "pigeon_events_stored_total",
    "Events JetStream confirmed storing (a duplicate of an earlier one included), by type.",
    ["type"],
)
EVENTS_FAILED = Counter(
    "pigeon_events_failed_total",
    "Events whose storing JetStream did not confirm (refused, NATS away, no ack), by type.",
    ["type"],
)


class Tally:
    """Increments of one labelled counter kept as plain ints until `flush()` adds them
    (single-threaded: the event loop's)."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._pending: dict[tuple[str, ...], int] = {}
        TALLIES.append(self)

    def add(self, labels: tuple[str, ...]) -> None:
        self._pending[labels] = self._pending.get(labels, 0) + 1

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for labels, count in pending.items():
            self._counter.labels(*labels).inc(count)


TALLIES: list[Tally] = []


def flush_all() -> None:
    for tally in TALLIES:
        tally.flush()


async def flush_periodically(stop: asyncio.Event, every_sec: float = FLUSH_EVERY_SEC) -> None:
    """Flush every `every_sec` until `stop`, then once more (for multiprocess mode, where
    another process may answer the scrape)."""
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_sec)
            flush_all()
    finally:
        flush_all()


class EventCounts:
    """`EVENTS_STORED` and `EVENTS_FAILED` by event type, tallied."""

    def __init__(self) -> None:
        self._stored = Tally(EVENTS_STORED)
        self._failed = Tally(EVENTS_FAILED)

    def stored(self, event_type: str) -> None:
        self._stored.add((event_type,))

    def failed(self, event_type: str) -> None:
        self._failed.add((event_type,))

    def count(self, event_type: str, stored: bool) -> None:
        (self._stored if stored else self._failed).add((event_type,))


EVENTS = EventCounts()


def exposition() -> bytes:
    """Every metric of this process in Prometheus' text format; in multiprocess mode
    those of every process writing to `MULTIPROC_DIR`, gathered from their files."""
    flush_all()
    if MULTIPROC_DIR is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=MULTIPROC_DIR)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


async def respond_asgi(
    send: Callable[[dict[str, object]], Awaitable[None]],
    refresh: Refresh | None = None,
    *,
    head: bool = False,
) -> None:
    """Answer an ASGI request with the exposition, after `refresh` when given (a
    refresh that fails leaves its gauges as they were: the scrape still answers)."""
    if refresh is not None:
        try:
            await refresh()
        except Exception as exc:
            log.warning("refreshing metrics before a scrape failed: %s", exc)
    body = exposition()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", CONTENT_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})
