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
from pigeon_testing.dovecot import DovecotServer, ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from tests.integration.sending_helpers import mailbox_for, parse, people


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
    api_port, tracker_port = free_port(), free_port()
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
        PIGEON_TRACKER_PORT=str(tracker_port),
        PIGEON_IMAP_SYNC_PORT=str(free_port()),
        PIGEON_MCP_PORT=str(free_port()),
        PIGEON_IMAP_SYNC_INTERVAL="3600",
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


def _campaign(
    up: Up, smtp: SmtpTestServer, imap: ImapAccount, name: str, count: int, **mailbox: Any
) -> str:
    mailbox = up.call("POST", "/mailboxes", json=mailbox_for(smtp, imap, **mailbox))
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


def test_tracking_links_and_bounce_sync_close_the_loop(
    up: Up, smtp: SmtpTestServer, dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    dovecot.create_folder(imap_user.username, "Bounces")
    campaign_id = _campaign(
        up, smtp, imap_user, "Loop check", 2, bounce_folder="Bounces", append_to_sent="never"
    )
    sent = up.pigeon("campaign", "send", "--campaign", campaign_id)
    assert sent.returncode == 0, sent.stderr + sent.stdout
    by_rcpt = {m.rcpt_tos[0]: parse(m.data) for m in smtp.messages[-2:]}
    first = by_rcpt["person0@example.org"]
    html = first.get_body(preferencelist=("html",)).get_content()
    pixel = re.search(r'src="(http://127\.0\.0\.1:\d+/campaigns/o/[^"]+)"', html)
    assert pixel, html
    opened = httpx.get(pixel.group(1), timeout=10)
    assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
    unsubscribe = first["List-Unsubscribe"].strip("<>")
    one_click = httpx.post(
        unsubscribe, data={"List-Unsubscribe": "One-Click"}, timeout=10, follow_redirects=False
    )
    assert one_click.status_code == 200, one_click.text

    bounced = by_rcpt["person1@example.org"]
    dovecot.deliver(
        imap_user.username, "Bounces", _dsn(bounced["Message-ID"], "person1@example.org")
    )
    synced = up.pigeon("imap-sync")  # the running imap-sync may have read it already
    assert synced.returncode == 0, synced.stderr
    assert re.search(r"\(Bounces\): read \d+, bounced [01]\b", synced.stdout), synced.stdout

    deadline = time.monotonic() + 30
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = up.call("GET", f"/campaigns/{campaign_id}/stats")
        if stats["bounced_hard"] and stats["unsubscribed"] and stats["opened"]:
            break
        time.sleep(0.2)
    assert (stats["opened"], stats["unsubscribed"], stats["bounced_hard"]) == (1, 1, 1), stats
    suppressed = up.call("GET", "/suppressions")["data"]
    assert {(s["email"], s["reason"]) for s in suppressed} >= {
        ("person0@example.org", "unsubscribed"),
        ("person1@example.org", "hard_bounce"),
    }


def _dsn(message_id: str, recipient: str) -> bytes:
    lines = [
        "From: MAILER-DAEMON@mx.example.org",
        "To: sender@example.com",
        "Subject: Undelivered Mail Returned to Sender",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
        "",
        "--B",
        "Content-Type: text/plain",
        "",
        "Your message could not be delivered.",
        "--B",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.org",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        "Action: failed",
        "Status: 5.1.1",
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown",
        "--B",
        "Content-Type: text/rfc822-headers",
        "",
        f"Message-ID: {message_id}",
        "--B--",
        "",
    ]
    return "\r\n".join(lines).encode()
