"""What every benchmark here needs: logging, a SIGTERM that unwinds, the embedded servers,
child processes stopped by their PID, and CPU and log readings from /proc and files.

The scripts run as `python bench/NAME.py`, so this folder is on the import path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from pigeon_embedded.nats import NatsServer
from pigeon_embedded.postgres import PostgresServer

log = logging.getLogger("bench")
STOP_WAIT_SEC = 15.0


def configure(*quiet: str) -> None:
    """Log to stderr with milliseconds (the result line goes to stdout), the `quiet`
    loggers at WARNING; SIGTERM unwinds like Ctrl-C, so every `finally` stops its servers."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def embedded_servers(
    name: str, *, fsync: bool = True
) -> Iterator[tuple[Path, NatsServer, PostgresServer]]:
    """A temporary folder with a nats-server and a PostgreSQL in it, both on 127.0.0.1;
    both are stopped (by PID) and the folder removed on the way out."""
    with tempfile.TemporaryDirectory(prefix=f"pigeon-bench-{name}-") as tmp:
        root = Path(tmp)
        nats = NatsServer(root / "nats")
        postgres = PostgresServer(root / "postgres" / "data", fsync=fsync)
        try:
            nats.start()
            log.info("nats-server pid %d at %s", nats.pid, nats.url)
            postgres.start()
            log.info(
                "postgres pid %d at %s (fsync %s)",
                postgres.pid,
                postgres.url,
                "on" if fsync else "off",
            )
            yield root, nats, postgres
        finally:
            postgres.stop()
            nats.stop()
            log.info("servers stopped")


class Processes:
    """Child processes started here, each stopped by its PID (a signal, then SIGKILL)."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes], int]] = []

    def start(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        stop_signal: int = signal.SIGTERM,
        **kw: Any,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` with stdout and stderr appended to `log_path`."""
        with log_path.open("ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, **kw)
        self._procs.append((name, proc, stop_signal))
        log.info("%s started, pid %d", name, proc.pid)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = STOP_WAIT_SEC) -> None:
        entry = next((e for e in self._procs if e[1] is proc), None)
        name, _, stop_signal = entry or ("process", proc, signal.SIGTERM)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) did not stop; killing it", name, proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        self._procs = [e for e in self._procs if e[1] is not proc]

    def stop_all(self) -> None:
        for _, proc, _ in reversed(list(self._procs)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep stopping the others
                log.error("could not stop pid %d: %s", proc.pid, exc)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process, its live children and the children it reaped (PostgreSQL
    runs a backend per connection)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += sum(int(f) for f in fields[11:15])
    return total / tick


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file ('' when it cannot be read)."""
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
