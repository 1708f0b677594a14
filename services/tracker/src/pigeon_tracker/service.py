"""The tracker service: `serve()` as `pigeon serve tracker` runs it, and `Tracker`, the same
tracker inside the caller's event loop (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType
from typing import Self

from pigeon_tracker.app import TrackerApp, create_app
from pigeon_tracker.settings import TrackerSettings
from pigeon_tracker.supervisor import Supervisor
from pigeon_tracker.worker import listening_socket, run_worker

READY_POLL_SEC = 0.02


async def serve(settings: TrackerSettings, stop: asyncio.Event) -> None:
    """Serve on tracker_host:tracker_port until `stop` is set: in this process with one
    worker, else `tracker_workers` worker processes sharing the port."""
    if settings.tracker_workers <= 1:
        sock = listening_socket(settings.tracker_host, settings.tracker_port, reuse_port=False)
        await run_worker(settings, [sock], stop)
    else:
        await Supervisor(settings).run(stop)


class Tracker:
    """One tracker worker in the current event loop on `host:port` (0: a free port).

    `async with Tracker(settings) as tracker:` returns once it is ready (connected to
    NATS and PostgreSQL); `tracker.url` is its base URL.
    """

    def __init__(self, settings: TrackerSettings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        self.host = host
        self.app: TrackerApp = create_app(settings)
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._socket is not None, "Tracker not started"
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        self._socket = listening_socket(self.host, self._requested_port, reuse_port=False)
        self._task = asyncio.create_task(
            run_worker(self.settings, [self._socket], self._stop, self.app)
        )
        await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the app is connected (raises TimeoutError, or the worker's own error)."""
        assert self._task is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.app.readiness.ready:
            if self._task.done():
                self._task.result()
                raise RuntimeError("tracker stopped during start")
            if loop.time() > deadline:
                raise TimeoutError(f"tracker not ready after {timeout}s: {self.app.readiness}")
            await asyncio.sleep(READY_POLL_SEC)

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=30)
        if self._socket is not None:
            self._socket.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
