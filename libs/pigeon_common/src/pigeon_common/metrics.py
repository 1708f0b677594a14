"""Prometheus metrics: the exposition every service serves at /metrics, and the counters
pigeon_common records itself (events stored in JetStream, or not).

Each service names its own metrics in its `metrics.py`; all of them live in
prometheus-client's default registry. A process started with `PROMETHEUS_MULTIPROC_DIR`
set (the tracker's worker processes) is in prometheus-client's multiprocess mode: every
process writes its values to files there, and a scrape of any one of them gathers all.
Like prometheus-client, the mode is read once, when this module is imported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

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


class EventCounts:
    """`EVENTS_STORED` and `EVENTS_FAILED` with their children kept per event type, so
    a hot path counts with one dict lookup instead of prometheus-client's labels()."""

    def __init__(self) -> None:
        self._stored: dict[str, Any] = {}
        self._failed: dict[str, Any] = {}

    def stored(self, event_type: str) -> None:
        child = self._stored.get(event_type)
        if child is None:
            child = self._stored[event_type] = EVENTS_STORED.labels(event_type)
        child.inc()

    def failed(self, event_type: str) -> None:
        child = self._failed.get(event_type)
        if child is None:
            child = self._failed[event_type] = EVENTS_FAILED.labels(event_type)
        child.inc()

    def count(self, event_type: str, stored: bool) -> None:
        if stored:
            self.stored(event_type)
        else:
            self.failed(event_type)


EVENTS = EventCounts()


def exposition() -> bytes:
    """Every metric of this process in Prometheus' text format; in multiprocess mode
    those of every process writing to `MULTIPROC_DIR`, gathered from their files."""
    if MULTIPROC_DIR is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=MULTIPROC_DIR)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


async def respond_asgi(send: Any, refresh: Refresh | None = None, *, head: bool = False) -> None:
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
