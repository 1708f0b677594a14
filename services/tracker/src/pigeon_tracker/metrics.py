"""The tracker's Prometheus metrics: requests by route and answer.

With several worker processes the supervisor starts each one with
`PROMETHEUS_MULTIPROC_DIR` set to a folder of its own (prometheus-client's multiprocess
mode): every worker writes its counts there, and /metrics on any worker gathers them all.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

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
    """`REQUESTS` children kept per (route, status): the hot path counts with one dict
    lookup instead of prometheus-client's labels()."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, int], Any] = {}

    def count(self, route: str, status: int) -> None:
        child = self._children.get((route, status))
        if child is None:
            answer = str(status) if status else "none"
            child = self._children[(route, status)] = REQUESTS.labels(route, answer)
        child.inc()
