"""/healthz, /readyz and /metrics for the services that have no HTTP API of their own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from pigeon_common import metrics
from pigeon_common.runtime import Readiness

ReadyCheck = Callable[[], Awaitable[Readiness]]


def health_app(
    check: ReadyCheck, refresh: metrics.Refresh | None = None
) -> Callable[..., Awaitable[None]]:
    """A minimal ASGI app: GET /healthz (alive), GET /readyz (ready or 503 with the reason),
    GET /metrics (Prometheus, after `refresh` when given)."""

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
        path = scope["path"]
        if path == metrics.METRICS_PATH:
            await metrics.respond_asgi(send, refresh, head=scope.get("method") == "HEAD")
            return
        body: dict[str, Any]
        if path == "/healthz":
            status, body = 200, {"status": "ok"}
        elif path == "/readyz":
            readiness = await check()
            if readiness.ready:
                status, body = 200, {"status": "ready"}
            else:
                status, body = 503, {"status": "not ready", "reason": readiness.reason}
        else:
            status, body = 404, {"error": {"code": "not_found", "message": "not found"}}
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


async def run_with_health(
    run: Callable[[asyncio.Event], Awaitable[None]],
    check: ReadyCheck,
    host: str,
    port: int,
    stop: asyncio.Event,
    refresh: metrics.Refresh | None = None,
) -> None:
    """`run(stop)` with /healthz, /readyz and /metrics served beside it on host:port; when
    either ends, both stop."""
    from pigeon_common.serving import serve_asgi

    app = health_app(check, refresh)
    health = asyncio.create_task(serve_asgi(app, host, port, stop, lifespan="off"))
    try:
        await run(stop)
    finally:
        stop.set()
        await health
