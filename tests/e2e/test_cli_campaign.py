"""The seed's campaign commands, run as a user runs them against `pigeon up`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pigeon_embedded.ports import free_port
from pigeon_testing.dovecot import ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from tests.integration.sending_helpers import mailbox_for, people


class Up:
    def __init__(self, data_dir: Path, env: dict[str, str], api: str, token: str) -> None:
        self.data_dir, self.env, self.api, self.token = data_dir, env, api, token

    def pigeon(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pigeon_cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.api}/api/v1{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            **kwargs,
        )
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    folder = tmp_path_factory.mktemp("up")
    api_port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PIGEON_DATABASE_URL", "PIGEON_NATS_URL", "PIGEON_SECRET_KEY")
    }
    env.update(
        PIGEON_DATA_DIR=str(folder / "data"),
        PIGEON_API_PORT=str(api_port),
        PIGEON_PROJECTOR_PORT=str(free_port()),
        PIGEON_SENDER_PORT=str(free_port()),
        PIGEON_PUBLIC_BASE_URL="http://127.0.0.1:9",
    )
    log = folder / "up.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "pigeon_cli", "up"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{api}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        token = re.search(r"token:\s+(pgn_\S+)", log.read_text())
        assert token, log.read_text()
        yield Up(folder / "data", env, api, token.group(1))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def _campaign(up: Up, smtp: SmtpTestServer, imap: ImapAccount, name: str, count: int) -> str:
    mailbox = up.call("POST", "/mailboxes", json=mailbox_for(smtp, imap))
    campaign = up.call(
        "POST",
        "/campaigns",
        json={
            "name": name,
            "subject": "Hi {{ recipient.name }}",
            "template_markdown": "Hello **{{ recipient.name }}** from {{ recipient.city }}",
            "mailbox_id": mailbox["id"],
        },
    )
    up.call(
        "POST", f"/campaigns/{campaign['id']}/recipients/bulk", json={"recipients": people(count)}
    )
    return str(campaign["id"])


def test_campaign_send_by_fuzzy_name_with_progress(
    up: Up, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    _campaign(up, smtp, imap_user, "Autumn newsletter 2026", 4)
    dry = up.pigeon("campaign", "send", "--name", "autumn", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "person0@example.org" in dry.stdout and "Hello Person 0" in dry.stdout
    assert smtp.messages == []

    sent = up.pigeon("campaign", "send", "--name", "autumn NEWS", "--batch-size", "2")
    assert sent.returncode == 0, sent.stderr + sent.stdout
    assert "4 recipients in 2 chunks" in sent.stdout
    assert "done: sent 4" in sent.stdout
    assert sorted(smtp.recipients()) == sorted(p["email"] for p in people(4))

    status = up.pigeon("campaign", "status", "--name", "autumn")
    assert status.returncode == 0
    assert "done" in status.stdout and re.search(r"sent\s+4", status.stdout)
    again = up.pigeon("campaign", "send", "--name", "autumn")
    assert again.returncode == 2 and "cannot send" in again.stderr


def test_campaign_enqueue_returns_at_once(
    up: Up, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    campaign_id = _campaign(up, smtp, imap_user, "Winter promo", 3)
    queued = up.pigeon("campaign", "enqueue", "--campaign", campaign_id, "--chunk-size", "1")
    assert queued.returncode == 0, queued.stderr
    assert "enqueued 3 recipients in 3 chunks" in queued.stdout
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(smtp.messages) < 3:
        time.sleep(0.1)
    assert len(smtp.messages) == 3
    missing = up.pigeon("campaign", "status", "--name", "no such campaign")
    assert missing.returncode == 2 and "no campaign" in missing.stderr
