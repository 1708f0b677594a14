"""Running the gateway: `pigeon serve mcp` (streamable HTTP at /mcp) and `pigeon mcp`
(stdio, one token)."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pigeon_common import metrics
from pigeon_common.serving import serve_asgi
from pigeon_mcp.api import Api
from pigeon_mcp.server import MCP_PATH, create_server
from pigeon_mcp.settings import McpSettings


async def serve(settings: McpSettings, stop: asyncio.Event) -> None:
    """Serve streamable HTTP on mcp_host:mcp_port until `stop` is set."""
    api = Api(settings.api_base)
    try:
        server = create_server(settings, api)
        # The SDK guards against DNS rebinding for loopback binds; others are the proxy's job.
        app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=settings.mcp_host)
        add_health_routes(app, api)
        await serve_asgi(app, settings.mcp_host, settings.mcp_port, stop)
    finally:
        await api.close()


async def run_stdio(settings: McpSettings, token: str) -> None:
    """Talk MCP over this process's stdin and stdout, every call with `token`."""
    api = Api(settings.api_base)
    try:
        await create_server(settings, api, stdio_token=token).run_stdio_async()
    finally:
        await api.close()


def add_health_routes(app: Starlette, api: Api) -> None:
    """/healthz (the process answers), /readyz (and the API it calls answers too) and
    /metrics (Prometheus); no token needed, like every service's."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        ready = await api.ready()
        body = {"status": "ok" if ready else "the REST API does not answer"}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def prometheus_metrics(_request: Request) -> Response:
        return Response(
            metrics.exposition(),
            media_type=metrics.CONTENT_TYPE,
            headers={"cache-control": "no-store"},
        )

    app.add_route("/healthz", healthz, methods=["GET"])
    app.add_route("/readyz", readyz, methods=["GET"])
    app.add_route(metrics.METRICS_PATH, prometheus_metrics, methods=["GET"])
