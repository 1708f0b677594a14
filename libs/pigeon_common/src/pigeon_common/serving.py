"""Running a service process: an ASGI server that stops with the service, and a main
loop that turns SIGINT/SIGTERM into a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

import uvicorn


class ServeError(RuntimeError):
    """The HTTP server could not start (e.g. its port is taken)."""


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_asgi(
    app: Any,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    lifespan: Literal["auto", "on", "off"] = "auto",
) -> None:
    """Serve `app` until `stop` is set (or the server fails to start)."""
    config = uvicorn.Config(
        app, host=host, port=port, lifespan=lifespan, log_level="warning", access_log=False
    )
    await serve_config(config, stop)


async def serve_config(
    config: uvicorn.Config, stop: asyncio.Event, sockets: list[socket.socket] | None = None
) -> None:
    """Serve as `config` says (on `sockets` when given, already listening) until `stop`."""
    server = _EmbeddedServer(config)

    async def run() -> None:
        try:
            await server.serve(sockets=sockets)
        except SystemExit as exc:  # uvicorn exits the process when it cannot bind
            where = f"{config.host}:{config.port}"
            raise ServeError(f"cannot serve on {where} (is the port in use?)") from exc

    task = asyncio.create_task(run())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopper.cancel()
    await task


def run_service(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` in a fresh event loop; SIGINT and SIGTERM set `stop`."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    with asyncio.Runner(loop_factory=_loop_factory()) as loop_runner:
        loop_runner.run(runner())


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it comes with uvicorn[standard]): about 15 % more messages
    per second in the sender for the same CPU."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
