"""What every embedded server shares: one child process, its log file, and a stop that
asks politely first and kills if it must."""

from __future__ import annotations

import signal
import subprocess
from types import TracebackType
from typing import IO, ClassVar, Self

from pigeon_embedded.errors import EmbeddedServerError


class ServerProcess:
    """Base of the embedded servers; subclasses start `_process` in their `start()`."""

    NAME: ClassVar[str] = "server"
    STOP_SIGNAL: ClassVar[int] = signal.SIGTERM
    STOP_TIMEOUT: ClassVar[float] = 10.0

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        raise NotImplementedError

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise EmbeddedServerError(f"{self.NAME} has not been started")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _ensure_stopped(self) -> None:
        if self.running:
            raise EmbeddedServerError(f"{self.NAME} already running (pid {self.pid})")

    def _terminate(self, timeout: float) -> None:
        """STOP_SIGNAL, then SIGKILL if the process has not exited within `timeout`."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(self.STOP_SIGNAL)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, timeout: float | None = None) -> None:
        self._terminate(self.STOP_TIMEOUT if timeout is None else timeout)

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
