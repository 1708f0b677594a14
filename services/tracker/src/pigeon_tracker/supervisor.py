"""Several tracker worker processes on one port, kept running by their parent.

Each worker is a fresh interpreter (multiprocessing "spawn": no event loop or connection
inherited) with its own listening socket on the same port (SO_REUSEPORT: the kernel
spreads new connections over the workers), its own uvloop, NATS connection and pool. The
parent holds the port with a bound, non-listening socket of the same group (so port 0
can be resolved once and a restarted worker finds its port again), restarts a worker that
died, and on stop sends each worker SIGTERM by its PID, then SIGKILL if it must.

Metrics: each worker is started with `PROMETHEUS_MULTIPROC_DIR` set to a folder of this
port's under the data dir (emptied when the supervisor starts), so /metrics on whichever
worker a scrape reaches counts every worker's requests, a restarted one's included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from pigeon_common.backoff import Backoff
from pigeon_common.logs import configure_logging
from pigeon_common.metrics import MULTIPROC_DIR_ENV
from pigeon_common.runtime import pause
from pigeon_common.serving import run_service
from pigeon_tracker.settings import TrackerSettings
from pigeon_tracker.worker import listening_socket, run_worker

log = logging.getLogger(__name__)

CHECK_INTERVAL_SEC = 0.5
STOP_TIMEOUT_SEC = 10.0
PARENT_CHECK_SEC = 1.0
METRICS_FOLDER = "tracker-metrics"


def worker_main(settings: TrackerSettings, host: str, port: int) -> None:
    """Entry point of a worker process: serve until SIGTERM/SIGINT or the parent is gone."""
    configure_logging(settings.log_level)
    parent = os.getppid()

    async def main(stop: asyncio.Event) -> None:
        watcher = asyncio.create_task(_watch_parent(parent, stop))
        try:
            sock = listening_socket(host, port, reuse_port=True)
            await run_worker(settings, [sock], stop)
        finally:
            watcher.cancel()

    run_service(main)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Stop when the parent process is gone (it was killed and cannot stop us)."""
    while not stop.is_set():
        if os.getppid() != parent:
            log.warning("tracker parent %d is gone; stopping", parent)
            stop.set()
            return
        await pause(stop, PARENT_CHECK_SEC)


class Supervisor:
    """Runs `settings.tracker_workers` workers until stopped."""

    def __init__(self, settings: TrackerSettings) -> None:
        self.settings = settings
        self.port: int | None = None
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess] = []
        self.metrics_dir: Path | None = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._workers if p.pid is not None]

    def _start(self, host: str, port: int, index: int) -> BaseProcess:
        process = self._context.Process(
            target=worker_main,
            args=(self.settings, host, port),
            name=f"pigeon-tracker-{index}",
        )
        assert self.metrics_dir is not None
        with _environment(MULTIPROC_DIR_ENV, str(self.metrics_dir)):
            process.start()  # a spawned interpreter: it reads the variable at its start
        log.info("tracker worker %d started, pid %s", index, process.pid)
        return process

    async def run(self, stop: asyncio.Event) -> None:
        host = self.settings.tracker_host
        # Bound, never listening: holds the port (and picks one for port 0) in the
        # SO_REUSEPORT group while workers come and go; it is never given a connection.
        reservation = listening_socket(
            host, self.settings.tracker_port, reuse_port=True, listen=False
        )
        port = self.port = int(reservation.getsockname()[1])
        self.metrics_dir = _fresh_folder(self.settings.data_dir / METRICS_FOLDER / str(port))
        log.info("tracker on %s:%d with %d workers", host, port, self.settings.tracker_workers)
        backoff = Backoff()
        try:
            self._workers = [
                self._start(host, port, i) for i in range(self.settings.tracker_workers)
            ]
            while not stop.is_set():
                await pause(stop, CHECK_INTERVAL_SEC)
                for index, process in enumerate(self._workers):
                    if stop.is_set() or process.is_alive():
                        continue
                    if process.pid is not None:
                        mark_process_dead(process.pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]
                    delay = backoff.next_delay()
                    log.warning(
                        "tracker worker %d (pid %s) exited with %s; restarting in %.1fs",
                        index,
                        process.pid,
                        process.exitcode,
                        delay,
                    )
                    await pause(stop, delay)
                    if not stop.is_set():
                        self._workers[index] = self._start(host, port, index)
        finally:
            await self._stop_workers()
            reservation.close()

    async def _stop_workers(self) -> None:
        for process in self._workers:
            if process.is_alive():
                process.terminate()  # SIGTERM to this worker's PID
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_TIMEOUT_SEC
        for process in self._workers:
            if not await exited(process, deadline - loop.time()):
                log.warning("tracker worker pid %s ignored SIGTERM; killing it", process.pid)
                process.kill()
            process.join(timeout=1)


def _fresh_folder(path: Path) -> Path:
    """`path`, empty: counts of an earlier run of this port start again from zero, as a
    restarted process's do."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """`name=value` in this process's environment for the block only (what a child
    started inside it inherits), restored after."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


async def exited(process: BaseProcess, timeout: float) -> bool:
    """True once `process` has exited, False after `timeout` seconds (its sentinel, a pipe
    end, becomes readable when it exits: no polling, no thread)."""
    if not process.is_alive():
        return True
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(process.sentinel, readable)
    try:
        await asyncio.wait_for(gone, max(timeout, 0.0))
        return True
    except TimeoutError:
        return not process.is_alive()
    finally:
        loop.remove_reader(process.sentinel)
