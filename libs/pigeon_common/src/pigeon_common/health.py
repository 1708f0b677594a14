"""/healthz, /readyz and /metrics for the services that have no HTTP API of their own
(and the tracker's, in front of its tracking routes).

The app is a table of routes: a service (or a helper) adds its own with `routes=`, each
a coroutine that answers a `Reply`; /metrics is Prometheus' text (after `refresh`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pigeon_common import metrics
from pigeon_common.runtime import Readiness

ReadyCheck = Callable[[], Awaitable[Readiness]]
JSON = b"application/json"


@dataclass(frozen=True)
class Reply:
    """One answer of a health route."""

    status: int
    body: bytes
    content_type: bytes = JSON

    @classmethod
    def json(cls, status: int, body: dict[str, Any]) -> Reply:
        return cls(status, json.dumps(body).encode())


Route = Callable[[], Awaitable[Reply]]
NOT_FOUND = Reply.json(404, {"error": {"code": "not_found", "message": "not found"}})


def health_routes(check: ReadyCheck) -> dict[str, Route]:
    """GET /healthz (the process answers) and GET /readyz (ready, or 503 with the reason)."""

    async def healthz() -> Reply:
        return Reply.json(200, {"status": "ok"})

    async def readyz() -> Reply:
        readiness = await check()
        if readiness.ready:
            return Reply.json(200, {"status": "ready"})
        return Reply.json(503, {"status": "not ready", "reason": readiness.reason})

    return {"/healthz": healthz, "/readyz": readyz}


def health_app(
    check: ReadyCheck,
    routes: Mapping[str, Route] | None = None,
    refresh: metrics.Refresh | None = None,
) -> Callable[..., Awaitable[None]]:
    """A minimal ASGI app: the health routes and `routes`, by path (any method), and
    GET /metrics (Prometheus, after `refresh` when given)."""
    table = {**health_routes(check), **(routes or {})}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == metrics.METRICS_PATH:
            await metrics.respond_asgi(send, refresh, head=scope.get("method") == "HEAD")
            return
        route = table.get(scope["path"])
        reply = await route() if route is not None else NOT_FOUND
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(b"content-type", reply.content_type)],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})

    return app


async def run_with_health(
    run: Callable[[asyncio.Event], Awaitable[None]],
    check: ReadyCheck,
    host: str,
    port: int,
    stop: asyncio.Event,
    routes: Mapping[str, Route] | None = None,
    refresh: metrics.Refresh | None = None,
) -> None:
    """`run(stop)` with /healthz, /readyz, /metrics (and `routes`) served beside it on
    host:port; when either ends, both stop."""
    from pigeon_common.serving import serve_asgi

    app = health_app(check, routes, refresh)
    health = asyncio.create_task(serve_asgi(app, host, port, stop, lifespan="off"))
    try:
        await run(stop)
    finally:
        stop.set()
        await health
