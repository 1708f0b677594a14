"""Faults at the real SMTP server, a sender killed mid-chunk, hostile templates and data."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
from pathlib import Path

import pytest

from pigeon_sender.service import serve as serve_sender
from pigeon_testing.dovecot import ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack

from .sending_helpers import create_campaign, mailbox_for, messages, parse, people, wait_status


async def test_temporary_failure_then_success_sends_once(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    smtp.fail("rcpt", 451, "4.3.0 try again later", recipients=["person1@example.org"])
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(3))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    state = await wait_status(client, campaign_id, {"done"}, timeout=60)
    assert state["sent"] == 3
    assert collections.Counter(smtp.recipients())["person1@example.org"] == 1


async def test_permanent_failures_are_recorded_and_unknown_users_suppressed(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    smtp.fail(
        "rcpt",
        550,
        "5.1.1 <person0@example.org>: user unknown",
        recipients=["person0@example.org"],
        times=None,
    )
    smtp.fail(
        "data",
        554,
        "5.7.1 message rejected as spam",
        recipients=["person1@example.org"],
        times=None,
    )
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(3))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    state = await wait_status(client, campaign_id, {"done"})
    assert (state["sent"], state["failed"]) == (1, 2)
    failed = {m["email"]: m for m in await messages(client, campaign_id, "failed")}
    assert failed["person0@example.org"]["smtp_code"] == 550
    assert "user unknown" in failed["person0@example.org"]["smtp_reply"]
    assert failed["person0@example.org"]["hard_bounce"] is True
    assert failed["person1@example.org"]["hard_bounce"] is False
    assert "spam" in failed["person1@example.org"]["smtp_reply"]

    smtp.reset_faults()
    smtp.clear()
    mailbox_id = (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()["mailbox_id"]
    again = await create_campaign(
        client, mailbox_for(smtp, imap_user), people(3), mailbox_id=mailbox_id
    )
    await client.post(f"/api/v1/campaigns/{again}/send", json={})
    state = await wait_status(client, again, {"done"})
    # The unknown user was suppressed; the spam rejection suppressed nobody.
    assert sorted(smtp.recipients()) == ["person1@example.org", "person2@example.org"]
    assert state["suppressed"] == 1


async def test_disconnect_during_data_is_unknown_never_resent(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    smtp.disconnect_during_data(times=1)
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(4))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    state = await wait_status(client, campaign_id, {"done"})
    assert (state["sent"], state["unknown"]) == (3, 1)
    unknown = (await messages(client, campaign_id, "unknown"))[0]["email"]
    assert unknown not in smtp.recipients()
    assert len(smtp.recipients()) == len(set(smtp.recipients())) == 3


async def test_a_server_in_a_denied_range_pauses_the_campaign_before_connecting(
    sending_stack: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    """`localhost` is a name (accepted when saved) that resolves into the denied range."""
    client = sending_stack.client
    assert client is not None
    mailbox = mailbox_for(smtp, imap_user)
    mailbox["smtp"]["host"] = "localhost"
    campaign_id = await create_campaign(client, mailbox, people(2))
    deny_loopback = {"mailbox_hosts_deny": "127.0.0.0/8, ::1/128"}
    sender = sending_stack.start_service(
        lambda settings, stop: serve_sender(settings.model_copy(update=deny_loopback), stop)
    )
    try:
        await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
        state = await wait_status(client, campaign_id, {"paused"})
    finally:
        await sender.stop()
    assert "not allowed" in state["reason"] and "PIGEON_MAILBOX_HOSTS_DENY" in state["reason"]
    assert smtp.recipients() == [] and state["queued"] == 2


async def test_wrong_password_pauses_the_campaign_with_the_reason(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    campaign_id = await create_campaign(
        client, mailbox_for(smtp, imap_user, password="wrong-password"), people(3)
    )
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    state = await wait_status(client, campaign_id, {"paused"})
    assert "authentication" in state["reason"].lower()
    assert smtp.recipients() == []
    assert state["queued"] == 3

    # The user fixes the password and resumes: the new password is used at once.
    mailbox_id = (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()["mailbox_id"]
    fixed = await client.patch(
        f"/api/v1/mailboxes/{mailbox_id}", json={"smtp": {"password": smtp.password}}
    )
    assert fixed.status_code == 200, fixed.text
    assert (await client.post(f"/api/v1/campaigns/{campaign_id}/resume")).status_code == 200
    state = await wait_status(client, campaign_id, {"done"})
    assert state["sent"] == 3
    assert sorted(smtp.recipients()) == sorted(p["email"] for p in people(3))


async def test_template_escapes_and_undefined_variables_are_refused(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    mailbox = await client.post("/api/v1/mailboxes", json=mailbox_for(smtp, imap_user))
    mailbox_id = mailbox.json()["id"]
    refused_at_save = []
    for template, fragment in [
        ("{{ ''.__class__.__mro__ }}", "not allowed"),
        ("{{ recipient|attr('__class__') }}", "__class__"),
        ("{{ '{0.__class__}'.format(recipient) }}", "class"),
        ("{% for i in range(10**9) %}x{% endfor %}", "range"),
        ("Hello {{ recipient.nickname }}", "nickname"),
    ]:
        body = {
            "name": "t",
            "subject": "s",
            "template_markdown": template,
            "mailbox_id": mailbox_id,
        }
        saved = await client.post("/api/v1/campaigns", json=body)
        if saved.status_code == 422:  # what the template says alone is refused when saved
            assert fragment in saved.json()["error"]["message"], saved.text
            refused_at_save.append(template)
            continue
        campaign_id = await create_campaign(
            client, {}, people(2), template=template, mailbox_id=mailbox_id
        )
        dry = await client.post(f"/api/v1/campaigns/{campaign_id}/dry-run", json={})
        assert dry.status_code == 422, (template, dry.text)
        assert fragment in dry.json()["error"]["message"], dry.text
        send = await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
        assert send.status_code == 422
    assert "{{ ''.__class__.__mro__ }}" in refused_at_save
    assert smtp.recipients() == []


async def test_line_breaks_in_data_never_become_headers(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    hostile = [
        {
            "email": "eve@example.org",
            "name": "Eve",
            "attributes": {"city": "Paris\r\nBcc: victim@example.net\r\nX-Evil: 1"},
        },
    ]
    campaign_id = await create_campaign(
        client, mailbox_for(smtp, imap_user), hostile, subject="Hi from {{ recipient.city }}"
    )
    dry = await client.post(f"/api/v1/campaigns/{campaign_id}/dry-run", json={})
    assert dry.status_code == 200, dry.text
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    await wait_status(client, campaign_id, {"done"})
    (received,) = smtp.messages
    assert list(received.rcpt_tos) == ["eve@example.org"]
    message = parse(received.data)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "\n" not in message["Subject"] and "Paris" in message["Subject"]


async def test_killed_sender_loses_nothing_and_sends_nobody_twice(
    sending_stack: Stack, smtp: SmtpTestServer, imap_user: ImapAccount, tmp_path: Path
) -> None:
    client = sending_stack.client
    assert client is not None
    total = 2000
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(total))
    settings = sending_stack.settings
    env = {
        **os.environ,
        "PIGEON_DATABASE_URL": settings.database_url or "",
        "PIGEON_NATS_URL": settings.nats_url or "",
        "PIGEON_SECRET_KEY": settings.secret().decode(),
        "PIGEON_PUBLIC_BASE_URL": str(settings.public_base_url),
        "PIGEON_SENDER_PORT": "0",
        "PIGEON_SENDER_CONCURRENCY": "1",
        "PIGEON_JOB_ACK_WAIT_SEC": "5",
    }

    async def sender(log: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pigeon_cli",
            "serve",
            "sender",
            env=env,
            stdout=(tmp_path / log).open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )

    first = await sender("first.log")
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": total})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while len(smtp.messages) < 400 and loop.time() < deadline:  # noqa: ASYNC110 - polls a thread
        await asyncio.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    at_kill = len(smtp.messages)
    assert 0 < at_kill < total, "the kill must land in the middle of the chunk"

    second = await sender("second.log")
    try:
        state = await wait_status(client, campaign_id, {"done"}, timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()
    counts = collections.Counter(smtp.recipients())
    assert max(counts.values()) == 1, "somebody got the campaign twice"
    outcomes = state["sent"] + state["unknown"]
    assert outcomes == total and state["failed"] == 0
    assert len(counts) >= state["sent"]
    # Only messages in flight at the kill can be unknown (one connection, a few buffered
    # outcome records), never the recipients not yet reached.
    assert state["unknown"] <= 10, state


@pytest.fixture(autouse=True)
def _no_leftover_faults(smtp: SmtpTestServer) -> None:
    smtp.reset_faults()


async def test_refused_sender_fails_the_message_but_suppresses_nobody(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    smtp.fail("mail", 550, "5.1.1 <sender@example.com>: sender unknown", times=1)
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(2))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": 2})
    state = await wait_status(client, campaign_id, {"done"})
    assert (state["sent"], state["failed"], state["unknown"]) == (1, 1, 0)
    [failed] = await messages(client, campaign_id, "failed")
    assert failed["smtp_code"] == 550 and failed["hard_bounce"] is False
    mailbox_id = (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()["mailbox_id"]
    listed = await client.get("/api/v1/suppressions", params={"mailbox_id": mailbox_id})
    assert listed.json()["count"] == 0


async def test_recipient_whose_data_trips_the_template_is_failed_not_unknown(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    # Sorted last, so the check at send time (the first recipients) does not see it.
    recipients = [*people(21), {"email": "zz-no-city@example.org", "name": "Zed"}]
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), recipients)
    started = await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    assert started.status_code == 202, started.text
    state = await wait_status(client, campaign_id, {"done"})
    assert (state["sent"], state["failed"], state["unknown"]) == (21, 1, 0)
    [failed] = await messages(client, campaign_id, "failed")
    assert failed["email"] == "zz-no-city@example.org"
    assert "city" in failed["smtp_reply"] and failed["smtp_code"] == 0
    assert "zz-no-city@example.org" not in smtp.recipients()


async def test_passwords_this_server_cannot_decrypt_fail_the_campaign_visibly(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    """A job that can never succeed lands as a failed campaign with the reason, instead of
    coming back forever; the reason names no secret."""
    from pigeon_common import db
    from pigeon_common.secrets_box import SecretBox

    client = running_sender.client
    assert client is not None and running_sender.settings.database_url is not None
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(2))
    mailbox_id = (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()["mailbox_id"]
    other_key = SecretBox([b"another server's secret key, 40 characters long"])
    conn = await db.connect(running_sender.settings.database_url)
    try:
        await conn.execute(
            "UPDATE mailbox_secrets SET smtp_password = $2, updated_at = now()"
            " WHERE mailbox_id = $1",
            mailbox_id,
            other_key.encrypt(smtp.password),
        )
    finally:
        await conn.close()
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    state = await wait_status(client, campaign_id, {"failed"})
    assert state["reason"] == (
        "the mailbox's passwords cannot be decrypted with this server's secret key: set them again"
    )
    assert not {"person0@example.org", "person1@example.org"} & set(smtp.recipients())


async def test_an_idn_recipient_is_addressed_in_punycode_on_the_wire(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    person = {"email": "jorg@bücher.org", "name": "Jörg", "attributes": {"city": "Köln"}}
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), [person])
    assert (await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})).status_code == 202
    state = await wait_status(client, campaign_id, {"done"})
    assert state["sent"] == 1
    [received] = [m for m in smtp.messages if "jorg@xn--bcher-kva.org" in m.rcpt_tos]
    assert list(received.rcpt_tos) == ["jorg@xn--bcher-kva.org"]
    assert parse(received.data)["To"].addresses[0].domain == "xn--bcher-kva.org"


async def test_a_reply_slower_than_the_ack_wait_is_not_redelivered_as_unknown(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    """One DATA answered after longer than the job's ack wait (5 s here): the job says it
    is alive meanwhile, so it is not handed to another worker that would report the
    message in flight as unknown."""
    assert running_sender.settings.job_ack_wait_sec < 8
    client = running_sender.client
    assert client is not None
    smtp.stall("data", 8.0, times=1)
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(3))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": 3})
    state = await wait_status(client, campaign_id, {"done"}, timeout=90)
    assert (state["sent"], state["unknown"], state["failed"]) == (3, 0, 0)
    assert len(smtp.recipients()) == len(set(smtp.recipients())) == 3
