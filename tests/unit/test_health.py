"""The health app: /healthz, /readyz with the reason, and routes a service adds."""

from __future__ import annotations

import json
from typing import Any

from pigeon_common.health import Reply, health_app
from pigeon_common.runtime import Readiness


async def _get(app: Any, path: str) -> tuple[int, bytes, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET"}, receive, send)
    start, body = sent
    return start["status"], dict(start["headers"])[b"content-type"], body["body"]


async def test_ready_and_not_ready() -> None:
    readiness = Readiness()

    async def check() -> Readiness:
        return readiness

    app = health_app(check)
    assert await _get(app, "/healthz") == (200, b"application/json", b'{"status": "ok"}')
    status, _, body = await _get(app, "/readyz")
    assert (status, json.loads(body)) == (503, {"status": "not ready", "reason": "starting"})
    readiness.reason = None
    assert (await _get(app, "/readyz"))[0] == 200
    assert (await _get(app, "/nowhere"))[0] == 404


async def test_a_service_adds_a_route() -> None:
    async def check() -> Readiness:
        return Readiness(reason=None)

    async def extra() -> Reply:
        return Reply(200, b"up 1\n", b"text/plain")

    app = health_app(check, {"/extra": extra})
    assert await _get(app, "/extra") == (200, b"text/plain", b"up 1\n")
    assert (await _get(app, "/healthz"))[0] == 200
