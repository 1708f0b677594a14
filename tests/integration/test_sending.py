"""A campaign goes out through the mailbox's SMTP server, once per recipient, with a copy
in the mailbox's Sent folder; faults at the real SMTP server are handled."""

from __future__ import annotations

import asyncio
import collections
import uuid

from pigeon_common.jetstream import connect_nats
from pigeon_common.jobs import SendChunk, publish_chunks
from pigeon_testing.dovecot import DovecotServer, ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack

from .sending_helpers import create_campaign, mailbox_for, messages, parse, people, wait_status


async def test_every_recipient_gets_one_message_and_the_sent_copy(
    running_sender: Stack, smtp: SmtpTestServer, dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    recipients = people(25)
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), recipients)
    started = await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": 10})
    assert started.status_code == 202, started.text
    assert started.json()["chunks"] == 3
    again = await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    assert again.status_code == 409
    state = await wait_status(client, campaign_id, {"done"})
    assert (state["sent"], state["failed"], state["unknown"]) == (25, 0, 0)

    received = smtp.messages
    counts = collections.Counter(r for m in received for r in m.rcpt_tos)
    assert counts == collections.Counter(r["email"] for r in recipients)
    by_rcpt = {m.rcpt_tos[0]: m for m in received}
    for i in (0, 7, 24):
        message = parse(by_rcpt[f"person{i}@example.org"].data)
        assert message["Subject"] == f"News for Person {i}"
        assert message["To"].addresses[0].display_name == f"Person {i}"
        assert message["From"].addresses[0].addr_spec == "sender@example.com"
        assert message["Message-ID"].startswith(f"<{campaign_id}.")
        assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        assert f"City {i}" in text and f"City {i}" in html
        assert "/campaigns/o/" in html and "p.png" in html
        assert "https://example.com/news" not in html
        assert html.count("/campaigns/t/") >= 2

    copies = dovecot.fetch_all(imap_user.username, "Sent")
    assert sorted(copies) == sorted(m.data for m in received)
    rows = await messages(client, campaign_id)
    assert {r["status"] for r in rows} == {"sent"}
    assert all(r["appended"] and r["message_id"] for r in rows)


async def test_redelivered_chunk_sends_nothing_twice(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(12))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": 12})
    await wait_status(client, campaign_id, {"done"})
    rows = await messages(client, campaign_id)
    assert running_sender.settings.nats_url is not None
    nc = await connect_nats(running_sender.settings.nats_url, name="test", attempts=3)
    try:
        # The same chunk again, as a redelivery or a second enqueue would bring it.
        job = SendChunk(
            campaign_id=uuid.UUID(campaign_id),
            run_id=uuid.uuid4(),
            chunk_index=0,
            recipient_ids=[uuid.UUID(r["recipient_id"]) for r in rows],
        )
        await publish_chunks(nc.jetstream(), [job])
    finally:
        await nc.close()
    await asyncio.sleep(2)
    assert len(smtp.recipients()) == 12
    assert len(set(smtp.recipients())) == 12


async def test_recipient_suppressed_after_enqueue_is_not_sent_to(
    sending_stack: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = sending_stack.client
    assert client is not None
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(5))
    started = await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    assert started.status_code == 202, started.text
    # Enqueued while no sender runs; then the address is suppressed, then a sender starts.
    suppressed = await client.post("/api/v1/suppressions", json={"email": "Person3@example.org"})
    assert suppressed.status_code == 204, suppressed.text
    sender = sending_stack.start_sender()
    try:
        state = await wait_status(client, campaign_id, {"done"})
    finally:
        await sender.stop()
    assert sorted(smtp.recipients()) == sorted(f"person{i}@example.org" for i in (0, 1, 2, 4))
    assert (state["sent"], state["suppressed"]) == (4, 1)
    skipped = await messages(client, campaign_id, "suppressed")
    assert [m["email"] for m in skipped] == ["person3@example.org"]
