"""Where a running `pigeon up` tells the other commands its server URLs."""

from __future__ import annotations

import json
import os
from pathlib import Path

RUNTIME_FILE = "runtime.json"


def write(data_dir: Path, database_url: str, nats_url: str, pid: int) -> Path:
    path = data_dir / RUNTIME_FILE
    path.write_text(json.dumps({"database_url": database_url, "nats_url": nats_url, "pid": pid}))
    return path


def read(data_dir: Path) -> dict[str, str] | None:
    """The URLs of a `pigeon up` that is still running, or None."""
    path = data_dir / RUNTIME_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    try:
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return {"database_url": data["database_url"], "nats_url": data["nats_url"]}


def remove(data_dir: Path) -> None:
    (data_dir / RUNTIME_FILE).unlink(missing_ok=True)
