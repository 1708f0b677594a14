"""One tracker worker: the HTTP server on its listening socket, its own NATS connection
and a small PostgreSQL pool, all in one event loop.

The server answers from the first moment (/healthz 200, /readyz and tracking routes 503)
while the connections are being opened; it has no signal handling of its own, the caller
decides when to stop.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from pigeon_common import metrics
from pigeon_common.runtime import Boot, start, until_stopped
from pigeon_common.serving import serve_config
from pigeon_tracker.app import TrackerApp, create_app, deps_for
from pigeon_tracker.settings import TrackerSettings
from pigeon_tracker.unsubscribe import SQL

# A small pool: unsubscribe pages and link-cache misses only.
BOOT = Boot("pigeon-tracker", (SQL,), pool_size=4)
BACKLOG = 2048


def listening_socket(
    host: str, port: int, *, reuse_port: bool, listen: bool = True
) -> socket.socket:
    """A TCP socket bound to host:port, listening unless `listen` is false; with
    `reuse_port` several processes can each have one on the same port and the kernel
    spreads connections over them (a bound socket that never listens gets none)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve_app(app: TrackerApp, sockets: list[socket.socket], stop: asyncio.Event) -> None:
    """Serve `app` on already-listening sockets until `stop` is set."""
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # the app reads X-Forwarded-For itself, as far as it is trusted
        server_header=False,
    )
    await serve_config(config, stop, sockets)


async def run_worker(
    settings: TrackerSettings,
    sockets: list[socket.socket],
    stop: asyncio.Event,
    app: TrackerApp | None = None,
) -> None:
    """Serve the tracker (`app`, or a new one) on `sockets` until `stop` is set."""
    app = app or create_app(settings)
    server = asyncio.create_task(serve_app(app, sockets, stop))
    server.add_done_callback(lambda _: stop.set())  # a server that failed ends the worker
    # Another worker may answer the scrape: write this one's counts out every second.
    flusher = (
        asyncio.create_task(metrics.flush_periodically(stop)) if metrics.MULTIPROC_DIR else None
    )
    conns = await until_stopped(start(settings, BOOT, app.readiness), stop)
    deps = None
    try:
        if conns is not None:
            deps = await deps_for(conns)
            app.attach(deps)
            await asyncio.wait({server}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        await server  # in-flight requests finish while the connections are still open
        app.detach()
        if deps is not None:
            await deps.publisher.close()
        if conns is not None:
            await conns.close()
        if flusher is not None:
            await flusher
