"""The API's Prometheus metrics (requests by route template and status, their duration)
and the middleware that records them."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram

from pigeon_api.body_limit import ASGIApp, Receive, Scope, Send

REQUESTS = Counter(
    "pigeon_api_requests_total",
    "HTTP requests the API (REST and admin) answered, by method, route template and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "pigeon_api_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
UNMATCHED = "unmatched"  # no route: one label for every unknown path, not the path itself


def route_of(scope: Scope) -> str:
    """The matched route's template (`/api/v1/campaigns/{campaign_id}`); never the raw
    path, which would make a series per id.

    The router leaves the route on the scope, its path relative to the prefix it was
    included under (`/api/v1`, `/admin`); that prefix is literal, so it is the path's
    leading segments before the template's own.
    """
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    if ":path}" in path:  # a parameter spanning segments: the prefix cannot be told
        return path
    segments = scope["path"].split("/")
    own = path.count("/")
    return "/".join(segments[: len(segments) - own]) + path


class RequestMetricsMiddleware:
    """Counts every HTTP request once its answer started (500 when none did)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = route_of(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
