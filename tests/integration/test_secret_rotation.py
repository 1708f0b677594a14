"""Rotating PIGEON_SECRET_KEY on real servers (docs/operations.md): a mailbox stored under
the old key still sends and files its copies with the new key current and the old one
listed as previous; links and tokens made before the rotation still work; `pigeon secrets
reencrypt` moves the passwords to the new key, after which the new key alone suffices."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from pigeon_api.commands.secret_rotation import replace_if_unchanged
from pigeon_cli.settings import AllSettings
from pigeon_common import db
from pigeon_common.secrets_box import SecretBox, SecretBoxError
from pigeon_embedded.nats import NatsServer
from pigeon_testing.dovecot import ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, stack_settings
from pigeon_tracker.service import Tracker

from .sending_helpers import create_campaign, mailbox_for, messages, parse, wait_status

OLD_KEY = "the-old-server-secret-" + "o" * 24
NEW_KEY = "the-new-server-secret-" + "n" * 24
TEMPLATE = "# Hello {{ recipient.name }}\n\n[Read the news](https://example.com/news?id=1)\n"
CLICK = re.compile(r"https?://[^\s\"'<>]+(/campaigns/t/[A-Za-z0-9_-]+/r/[A-Za-z0-9_-]+/)")
PIXEL = re.compile(r"https?://[^\s\"'<>]+(/campaigns/o/[A-Za-z0-9_-]+/p\.png)")
CSRF_INPUT = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def _settings(database: str, nats: NatsServer, data_dir: Path, **keys: Any) -> AllSettings:
    return stack_settings(
        database, nats.url, data_dir, public_base_url="http://127.0.0.1:9", **keys
    )


@asynccontextmanager
async def _running(settings: AllSettings) -> AsyncIterator[Stack]:
    """API, projector and a sender with these keys on the module's servers."""
    stack = Stack(settings)
    await stack.start()
    stack.start_sender()
    try:
        yield stack
    finally:
        await stack.close()


async def _send_one(
    stack: Stack, smtp: SmtpTestServer, mailbox_id: str, email: str
) -> tuple[bytes, dict[str, Any]]:
    """Send a one-recipient campaign from `mailbox_id`; the delivered bytes and its row."""
    client = stack.client
    assert client is not None
    recipients = [{"email": email, "name": "Reader"}]
    campaign_id = await create_campaign(
        client, {}, recipients, template=TEMPLATE, mailbox_id=mailbox_id
    )
    assert (await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})).status_code == 202
    state = await wait_status(client, campaign_id, {"done", "failed"})
    assert (state["status"], state["sent"]) == ("done", 1), state
    [row] = await messages(client, campaign_id)
    [delivered] = [m for m in smtp.messages if email in m.rcpt_tos]
    # Logged in with the stored SMTP password (the test server checks it).
    assert delivered.auth_user == smtp.username
    return delivered.data, row


def _cli(settings: AllSettings, *args: str) -> subprocess.CompletedProcess[str]:
    """`pigeon ARGS` in a child process with only these servers and keys in its env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
    env |= {
        "PIGEON_DATABASE_URL": settings.database_url or "",
        "PIGEON_NATS_URL": settings.nats_url or "",
        "PIGEON_DATA_DIR": str(settings.data_dir),
        "PIGEON_SECRET_KEY": settings.secret().decode(),
    }
    if settings.secret_keys_previous is not None:
        env["PIGEON_SECRET_KEYS_PREVIOUS"] = settings.secret_keys_previous.get_secret_value()
    return subprocess.run(
        [sys.executable, "-m", "pigeon_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _sign_in_form(stack: Stack) -> tuple[str, str]:
    """The admin sign-in form as a browser gets it: its pre-session cookie and form token."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        page = await http.get("/admin/login")
    match = CSRF_INPUT.search(page.text)
    assert page.status_code == 200 and match is not None
    return page.cookies["pigeon_csrf"], match[1]


async def _sign_in(stack: Stack, form: tuple[str, str]) -> int:
    """POST the sign-in form `form` got earlier (perhaps from another key): the status."""
    cookie, csrf = form
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        answer = await http.post(
            "/admin/login",
            data={"csrf": csrf, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            headers={"Cookie": f"pigeon_csrf={cookie}"},
        )
    return answer.status_code


async def _stored(database_url: str, mailbox_id: str) -> tuple[str, str]:
    conn = await db.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT smtp_password, imap_password FROM mailbox_secrets WHERE mailbox_id = $1",
            uuid.UUID(mailbox_id),
        )
    finally:
        await conn.close()
    assert row is not None
    return row["smtp_password"], row["imap_password"]


async def test_a_rotation_keeps_mailboxes_links_and_tokens_working(
    module_nats: NatsServer,
    module_database: str,
    tmp_path: Path,
    smtp: SmtpTestServer,
    imap_user: ImapAccount,
) -> None:
    # Before: everything under the old key.
    before = _settings(module_database, module_nats, tmp_path / "a", secret_key=OLD_KEY)
    async with _running(before) as stack:
        assert stack.client is not None
        mailbox = mailbox_for(smtp, imap_user)
        created = await stack.client.post("/api/v1/mailboxes", json=mailbox)
        assert created.status_code == 201, created.text
        mailbox_id = created.json()["id"]
        raw, _ = await _send_one(stack, smtp, mailbox_id, "before@example.org")
        old_token = stack.token
        old_form = await _sign_in_form(stack)
    html = parse(raw).get_body(preferencelist=("html",)).get_content()
    [old_click], [old_pixel] = CLICK.findall(html), PIXEL.findall(html)
    old_smtp, old_imap = await _stored(module_database, mailbox_id)
    assert SecretBox([OLD_KEY.encode()]).decrypt(old_imap) == imap_user.password

    # During: the new key current, the old one previous, on every service at once.
    during = _settings(
        module_database,
        module_nats,
        tmp_path / "b",
        secret_key=NEW_KEY,
        secret_keys_previous=OLD_KEY,
    )
    async with _running(during) as stack, Tracker(during) as tracker:
        assert stack.client is not None
        headers = {"Authorization": f"Bearer {old_token}"}
        assert (await stack.client.get("/api/v1/users/me", headers=headers)).status_code == 200
        assert stack.token != old_token  # new tokens come from the new key
        mine = await stack.client.get("/api/v1/users/me/tokens", headers=headers)
        assert mine.json()["token"] == stack.token  # how a client gets its new token
        assert await _sign_in(stack, old_form) == 303  # a form open before still works

        _, row = await _send_one(stack, smtp, mailbox_id, "during@example.org")
        assert row["appended"] is True  # the IMAP password decrypted too: copy in Sent

        async with httpx.AsyncClient(base_url=tracker.url, timeout=10) as http:
            click = await http.get(old_click)
            assert click.status_code == 302, click.text
            assert click.headers["location"] == "https://example.com/news?id=1"
            assert (await http.get(old_pixel)).status_code == 200

        checked = _cli(during, "secrets", "reencrypt", "--check")
        assert checked.returncode == 1, checked.stderr
        assert "1 of 1 mailboxes have passwords under an older key" in checked.stdout
        assert (await _stored(module_database, mailbox_id)) == (old_smtp, old_imap)

        done = _cli(during, "secrets", "reencrypt")
        assert done.returncode == 0, done.stderr
        assert "re-encrypted the passwords of 1 of 1 mailboxes" in done.stdout
        assert OLD_KEY not in done.stdout + done.stderr and NEW_KEY not in done.stdout
        again = _cli(during, "secrets", "reencrypt", "--check")
        assert again.returncode == 0, again.stderr
        assert "0 of 1 mailboxes" in again.stdout

    new_smtp, new_imap = await _stored(module_database, mailbox_id)
    new_only = SecretBox([NEW_KEY.encode()])
    assert new_only.decrypt(new_smtp) == smtp.password
    assert new_only.decrypt(new_imap) == imap_user.password
    with pytest.raises(SecretBoxError):
        SecretBox([OLD_KEY.encode()]).decrypt(new_imap)

    # After: the old key dropped. Mailboxes work; what it signed does not any more.
    after = _settings(module_database, module_nats, tmp_path / "c", secret_key=NEW_KEY)
    async with _running(after) as stack, Tracker(after) as tracker:
        assert stack.client is not None
        _, row = await _send_one(stack, smtp, mailbox_id, "after@example.org")
        assert row["appended"] is True
        headers = {"Authorization": f"Bearer {old_token}"}
        assert (await stack.client.get("/api/v1/users/me", headers=headers)).status_code == 401
        assert await _sign_in(stack, old_form) == 403
        assert await _sign_in(stack, await _sign_in_form(stack)) == 303
        async with httpx.AsyncClient(base_url=tracker.url, timeout=10) as http:
            assert (await http.get(old_click)).status_code == 404


async def test_reencrypt_reports_a_password_no_key_reads_and_leaves_it(
    module_nats: NatsServer, module_database: str, tmp_path: Path
) -> None:
    settings = _settings(
        module_database,
        module_nats,
        tmp_path,
        secret_key=NEW_KEY,
        secret_keys_previous=OLD_KEY,
    )
    foreign = SecretBox([b"a key nobody lists here, forty characters"]).encrypt("pw")
    mailbox_id = uuid.uuid4()
    conn = await db.connect(module_database)
    try:
        await conn.execute(
            "INSERT INTO mailbox_secrets (mailbox_id, smtp_password, imap_password)"
            " VALUES ($1, $2, NULL)",
            mailbox_id,
            foreign,
        )
        result = _cli(settings, "secrets", "reencrypt")
        assert result.returncode == 1
        assert f"({mailbox_id}): no listed key decrypts its passwords" in result.stderr
        stored = await conn.fetchval(
            "SELECT smtp_password FROM mailbox_secrets WHERE mailbox_id = $1", mailbox_id
        )
        assert stored == foreign
    finally:
        await conn.execute("DELETE FROM mailbox_secrets WHERE mailbox_id = $1", mailbox_id)
        await conn.close()


async def test_a_password_changed_meanwhile_is_not_overwritten(module_database: str) -> None:
    """The compare-and-set under `reencrypt`: a row that no longer holds what was read is
    left to whoever changed it."""
    box = SecretBox([NEW_KEY.encode(), OLD_KEY.encode()])
    read = SecretBox([OLD_KEY.encode()]).encrypt("old password")
    meanwhile = box.encrypt("a password set through the API")
    mailbox_id = uuid.uuid4()
    conn = await db.connect(module_database)
    try:
        await conn.execute(
            "INSERT INTO mailbox_secrets (mailbox_id, smtp_password, imap_password)"
            " VALUES ($1, $2, NULL)",
            mailbox_id,
            meanwhile,
        )
        replaced = await replace_if_unchanged(
            conn, mailbox_id, (read, None), (box.reencrypt(read), None)
        )
        assert replaced is False
        stored = await conn.fetchval(
            "SELECT smtp_password FROM mailbox_secrets WHERE mailbox_id = $1", mailbox_id
        )
        assert stored == meanwhile
        assert await replace_if_unchanged(conn, mailbox_id, (meanwhile, None), (read, None))
    finally:
        await conn.execute("DELETE FROM mailbox_secrets WHERE mailbox_id = $1", mailbox_id)
        await conn.close()
