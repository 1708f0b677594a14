"""A private Dovecot IMAP server for tests, plus the pytest fixtures `dovecot` and `imap_user`.

The server runs from the Debian `dovecot-imapd` package (`scripts/install-test-system-deps`
installs it) with a configuration written into its own temporary folder: plaintext IMAP on
127.0.0.1 and a free port, users from a passwd-file, Maildir storage, `mail_fsync = never`.
Every user gets the folders `Sent` (RFC 6154 `\\Sent`), `Drafts`, `Trash`, `Junk` and
`Bounces`. LITERAL+, MULTIAPPEND and IDLE are Dovecot defaults.

Use as a pytest plugin (`-p pigeon_testing.dovecot` or `pytest_plugins`).
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import pytest

from pigeon_embedded.errors import EmbeddedServerError, read_log_tail
from pigeon_embedded.ports import LOOPBACK, free_port

DOVECOT_EXE: Final = "dovecot"
SYSTEM_SBIN: Final = Path("/usr/sbin")
INSTALL_HINT: Final = (
    "Dovecot is not installed; run `scripts/install-test-system-deps` "
    "(or `sudo apt-get install dovecot-imapd`)"
)

CONFIG_FILE_NAME: Final = "dovecot.conf"
USERS_DIR_NAME: Final = "users"
LOG_FILE_NAME: Final = "dovecot.log"
STDERR_FILE_NAME: Final = "dovecot.stderr"

DEFAULT_USER: Final = "test"
DEFAULT_PASSWORD: Final = "secret"  # noqa: S105 - a throwaway test server's login

SENT_FOLDER: Final = "Sent"
BOUNCES_FOLDER: Final = "Bounces"
HIERARCHY_SEPARATOR: Final = "/"

START_TIMEOUT: Final = 15.0
STOP_TIMEOUT: Final = 10.0
IMAP_TIMEOUT: Final = 10.0
START_ATTEMPTS: Final = 3
POLL_INTERVAL: Final = 0.02
GREETING_PREFIX: Final = b"* OK"

# The `nobody` account owns the mail when Dovecot runs as root (it refuses uid 0 for mail).
MAIL_USER_WHEN_ROOT: Final = "nobody"
# Passwd-file user names: no separator, no whitespace, nothing a shell or IMAP would quote.
_USER_NAME = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*")
_ALREADY_EXISTS = b"ALREADYEXISTS"


def find_dovecot() -> Path | None:
    """The `dovecot` master binary: on PATH, else in /usr/sbin (often not on a user's PATH)."""
    on_path = shutil.which(DOVECOT_EXE)
    if on_path is not None:
        return Path(on_path)
    candidate = SYSTEM_SBIN / DOVECOT_EXE
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


@dataclass(frozen=True)
class ImapAccount:
    """Where and as whom a client logs in: a user of a running `DovecotServer`."""

    host: str
    port: int
    username: str
    password: str


def quote_mailbox(name: str) -> str:
    """`name` as an IMAP quoted string (ASCII names only: no modified UTF-7 here)."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _render_config(
    *, root: Path, port: int, mail_uid: int, mail_gid: int, run_as: tuple[str, str] | None
) -> str:
    """The whole dovecot.conf; `run_as` is the (user, group) to use when not started as root."""
    unprivileged = ""
    if run_as is not None:
        user, group = run_as
        unprivileged = f"""
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
service imap-login {{
  chroot =
}}
service anvil {{
  chroot =
}}
"""
    return f"""# Written by pigeon_testing.dovecot for one test run.
protocols = imap
listen = {LOOPBACK}
base_dir = {root}/run
state_dir = {root}/state
instance_name = pigeon-test-{port}
log_path = {root}/{LOG_FILE_NAME}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
mail_fsync = never
mail_max_userip_connections = 1000
first_valid_uid = 1
{unprivileged}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/{USERS_DIR_NAME}/%u
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/mail/%u
}}

namespace inbox {{
  inbox = yes
  separator = {HIERARCHY_SEPARATOR}
  mailbox {SENT_FOLDER} {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox {BOUNCES_FOLDER} {{
    auto = subscribe
  }}
}}

service imap-login {{
  inet_listener imap {{
    address = {LOOPBACK}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class DovecotServer:
    """One private Dovecot master process, started with `-F` so that its PID is ours to stop.

    Configuration, users file, Maildirs and log live in `root` (a new temporary folder unless
    given; a folder this object created is removed by `stop()`). Users may be added before
    `start()` or while running: Dovecot re-reads the passwd-file when it changes.
    """

    def __init__(self, root: Path | None = None, *, executable: Path | None = None) -> None:
        exe = executable or find_dovecot()
        if exe is None:
            raise EmbeddedServerError(INSTALL_HINT)
        self.executable = exe
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="pigeon-dovecot-")) if root is None else root
        self.host = LOOPBACK
        self.port = 0
        self._passwords: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._prepare_root()

    # --- files -------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE_NAME

    @property
    def users_dir(self) -> Path:
        """One passwd-file per user, named after the user (see `add_user`)."""
        return self.root / USERS_DIR_NAME

    @property
    def log_path(self) -> Path:
        return self.root / LOG_FILE_NAME

    def _prepare_root(self) -> None:
        """Folders readable by Dovecot's unprivileged helpers; mail owned by the mail user."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam(MAIL_USER_WHEN_ROOT)
            os.chown(mail, nobody.pw_uid, nobody.pw_gid)
        self.users_dir.mkdir(exist_ok=True)
        self.users_dir.chmod(0o755)

    def _write_config(self) -> None:
        if os.geteuid() == 0:
            nobody = pwd.getpwnam(MAIL_USER_WHEN_ROOT)
            uid, gid, run_as = nobody.pw_uid, nobody.pw_gid, None
        else:
            uid, gid = os.getuid(), os.getgid()
            run_as = (pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name)
        text = _render_config(
            root=self.root, port=self.port, mail_uid=uid, mail_gid=gid, run_as=run_as
        )
        self.config_path.write_text(text, encoding="utf-8")

    # --- users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> ImapAccount:
        """Add a user; it can log in at once, also while the server runs.

        Each user has a passwd-file of its own (`users/<name>`): Dovecot re-reads a changed
        passwd-file at most once a second, but opens a file it has not seen yet right away.
        Changing the password of a user that has logged in may take a second to apply.
        """
        if not _USER_NAME.fullmatch(name):
            raise ValueError(f"user name {name!r} must match {_USER_NAME.pattern}")
        if not password or any(c in password for c in ":\n\r"):
            raise ValueError("password must be non-empty without ':' or line breaks")
        self._passwords[name] = password
        path = self.users_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(f"{name}:{{PLAIN}}{password}\n", encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(path)  # in one step, so Dovecot never reads half a file
        return self.account(name)

    def account(self, name: str) -> ImapAccount:
        """The login details of an added user (`port` is 0 until `start()`)."""
        return ImapAccount(self.host, self.port, name, self._password(name))

    def _password(self, user: str) -> str:
        try:
            return self._passwords[user]
        except KeyError:
            raise KeyError(f"no user {user!r} on this DovecotServer; add_user() it first") from None

    # --- process -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start Dovecot on a free port and wait for its IMAP greeting.

        A port taken by someone else between choosing and binding it is retried with another.
        """
        if self._process is not None:
            raise EmbeddedServerError("Dovecot already started", log_path=self.log_path)
        last_error: EmbeddedServerError | None = None
        for _ in range(START_ATTEMPTS):
            self.port = free_port(self.host)
            self._write_config()
            try:
                self._spawn_and_wait(timeout)
                return
            except EmbeddedServerError as error:
                last_error = error
                self.stop(remove_files=False)
                if "in use" not in error.log_tail:
                    break
        assert last_error is not None
        raise last_error

    def _spawn_and_wait(self, timeout: float) -> None:
        stderr_path = self.root / STDERR_FILE_NAME
        with stderr_path.open("ab") as stderr:
            self._process = subprocess.Popen(
                [str(self.executable), "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                tail = "\n".join(
                    t for t in (read_log_tail(stderr_path), read_log_tail(self.log_path)) if t
                )
                raise EmbeddedServerError(
                    f"dovecot exited with code {code} while starting",
                    log_path=self.log_path,
                    log_tail=tail,
                )
            if self._greets():
                return
            time.sleep(POLL_INTERVAL)
        raise EmbeddedServerError(
            f"dovecot did not greet on {self.host}:{self.port} within {timeout} s",
            log_path=self.log_path,
        )

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                return sock.recv(256).startswith(GREETING_PREFIX)
        except OSError:
            return False

    def stop(self, *, remove_files: bool = True) -> None:
        """Stop the master process (SIGTERM, then SIGKILL) and remove a folder we created."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        if remove_files and self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- mail --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def imap(self, user: str) -> Iterator[imaplib.IMAP4]:
        """A logged-in stdlib IMAP client for `user` over the real socket."""
        client = imaplib.IMAP4(self.host, self.port, timeout=IMAP_TIMEOUT)
        try:
            client.login(user, self._password(user))
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def create_folder(self, user: str, folder: str) -> None:
        """Create `folder` for `user`; a folder that exists already is fine."""
        with self.imap(user) as client:
            _create(client, folder)

    def deliver(self, user: str, folder: str, raw: bytes) -> None:
        """APPEND the RFC 5322 message `raw` to `user`'s `folder`, creating the folder first.

        imaplib sends line endings as CRLF: give `raw` with CRLF to get the same bytes back.
        """
        with self.imap(user) as client:
            _create(client, folder)
            typ, data = client.append(quote_mailbox(folder), "", None, raw)
            if typ != "OK":
                raise imaplib.IMAP4.error(f"APPEND to {folder!r} failed: {data!r}")

    def fetch_all(self, user: str, folder: str) -> list[bytes]:
        """Every message in `user`'s `folder`, in UID order, as raw bytes (flags untouched)."""
        with self.imap(user) as client:
            typ, data = client.select(quote_mailbox(folder), readonly=True)
            if typ != "OK":
                raise imaplib.IMAP4.error(f"SELECT {folder!r} failed: {data!r}")
            if int(data[0] or b"0") == 0:
                return []
            typ, fetched = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
            if typ != "OK":
                raise imaplib.IMAP4.error(f"FETCH in {folder!r} failed: {fetched!r}")
            return [item[1] for item in fetched if isinstance(item, tuple)]


def _create(client: imaplib.IMAP4, folder: str) -> None:
    typ, data = client.create(quote_mailbox(folder))
    if typ != "OK" and not any(_ALREADY_EXISTS in (d or b"") for d in data):
        raise imaplib.IMAP4.error(f"CREATE {folder!r} failed: {data!r}")


# --- pytest fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A started Dovecot for the whole session, with the user `test` / `secret`.

    Fails (never skips) when Dovecot is not installed.
    """
    if find_dovecot() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    server = DovecotServer()
    server.add_user(DEFAULT_USER, DEFAULT_PASSWORD)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> ImapAccount:
    """A fresh user with its own empty mailboxes on the session's Dovecot."""
    name = f"user-{secrets.token_hex(6)}"
    return dovecot.add_user(name, secrets.token_urlsafe(12))
