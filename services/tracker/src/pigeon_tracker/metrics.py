"""The tracker's Prometheus metrics: requests by route and answer.

With several worker processes the supervisor starts each one with
`PROMETHEUS_MULTIPROC_DIR` set to a folder of its own (prometheus-client's multiprocess
mode): every worker writes its counts there (each second), and /metrics on any worker
gathers them all.
"""

from __future__ import annotations

from prometheus_client import Counter

from pigeon_common.metrics import Tally

REQUESTS = Counter(
    "pigeon_tracker_requests_total",
    "HTTP requests the tracker answered, by route (open, click, unsubscribe, health, "
    "metrics, other) and answer (the HTTP status; none when the client left first).",
    ["route", "answer"],
)
OPEN = "open"
CLICK = "click"
UNSUBSCRIBE = "unsubscribe"
HEALTH = "health"
METRICS = "metrics"
OTHER = "other"


class RequestCounts:
    """`REQUESTS`, tallied (pigeon_common.metrics.Tally): the hot path adds to a dict."""

    def __init__(self) -> None:
        self._tally = Tally(REQUESTS)

    def count(self, route: str, status: int) -> None:
        self._tally.add((route, str(status) if status else "none"))
