"""The one error raised by the embedded servers."""

from __future__ import annotations

from pathlib import Path

LOG_TAIL_LINES = 40


def read_log_tail(log_path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a server log, or "" if there is no such file."""
    if log_path is None:
        return ""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class EmbeddedServerError(RuntimeError):
    """An embedded server (nats-server, PostgreSQL) failed to start, to become ready or to stop.

    `log_path` is the server's log file and `log_tail` its last lines at the time of the
    failure; both are part of the message so that a failed test shows why.
    """

    def __init__(
        self, message: str, *, log_path: Path | None = None, log_tail: str | None = None
    ) -> None:
        self.log_path = log_path
        self.log_tail = read_log_tail(log_path) if log_tail is None else log_tail
        self.reason = message
        full = message
        if log_path is not None:
            full += f"\nlog file: {log_path}"
        if self.log_tail:
            full += f"\n--- log tail ---\n{self.log_tail}"
        super().__init__(full)
