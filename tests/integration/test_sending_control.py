"""Rate limits, daily quotas, pause/resume/cancel, scheduling and `append_to_sent: auto`."""

from __future__ import annotations

import asyncio
import collections
from datetime import UTC, datetime, timedelta

from pigeon_testing.dovecot import DovecotServer, ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack

from .sending_helpers import create_campaign, mailbox_for, people, wait_status


async def test_per_second_limit_holds(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    mailbox = mailbox_for(smtp, imap_user, rate_per_second=4)
    campaign_id = await create_campaign(client, mailbox, people(12))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": 5})
    await wait_status(client, campaign_id, {"done"}, timeout=60)
    per_second = collections.Counter(int(m.received_at) for m in smtp.messages)
    assert sum(per_second.values()) == 12
    assert max(per_second.values()) <= 4, per_second


async def test_daily_quota_carries_over_instead_of_sending_more(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    mailbox = mailbox_for(smtp, imap_user, rate_per_day=3)
    campaign_id = await create_campaign(client, mailbox, people(5))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while len(smtp.messages) < 3 and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    await asyncio.sleep(3)
    state = (await client.get(f"/api/v1/campaigns/{campaign_id}/status")).json()
    assert len(smtp.messages) == 3
    assert (state["status"], state["sent"], state["queued"]) == ("sending", 3, 2)
    await client.post(f"/api/v1/campaigns/{campaign_id}/cancel")


async def test_pause_resume_and_cancel(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    # Four workers take four chunks at once; pause stops the rest.
    mailbox = mailbox_for(smtp, imap_user, rate_per_second=4)
    campaign_id = await create_campaign(client, mailbox, people(20))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": 2})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while len(smtp.messages) < 2 and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    paused = await client.post(f"/api/v1/campaigns/{campaign_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    await asyncio.sleep(2)  # sends in flight finish, nothing new starts
    at_pause = len(smtp.messages)
    await asyncio.sleep(2)
    assert len(smtp.messages) == at_pause < 20
    assert (await client.post(f"/api/v1/campaigns/{campaign_id}/pause")).status_code == 409
    resumed = await client.post(f"/api/v1/campaigns/{campaign_id}/resume")
    assert resumed.status_code == 200, resumed.text
    state = await wait_status(client, campaign_id, {"done"}, timeout=60)
    assert state["sent"] == 20
    assert collections.Counter(smtp.recipients()).most_common(1)[0][1] == 1

    smtp.clear()
    other = await create_campaign(client, mailbox, people(20, domain="example.net"))
    await client.post(f"/api/v1/campaigns/{other}/send", json={"batch_size": 2})
    cancelled = await client.post(f"/api/v1/campaigns/{other}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    await asyncio.sleep(2)
    sent_after_cancel = len(smtp.messages)
    await asyncio.sleep(2)
    assert len(smtp.messages) == sent_after_cancel < 20
    assert (await client.post(f"/api/v1/campaigns/{other}/resume")).status_code == 409


async def test_scheduled_campaign_starts_at_its_time(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(3))
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await client.post(f"/api/v1/campaigns/{campaign_id}/schedule", json={"send_at": past})
    assert refused.status_code == 422
    send_at = datetime.now(UTC) + timedelta(seconds=2)
    scheduled = await client.post(
        f"/api/v1/campaigns/{campaign_id}/schedule", json={"send_at": send_at.isoformat()}
    )
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    assert smtp.messages == []
    await wait_status(client, campaign_id, {"done"}, timeout=30)
    assert min(m.received_at for m in smtp.messages) >= send_at.timestamp()


async def test_append_auto_appends_when_the_provider_does_not(
    running_sender: Stack, smtp: SmtpTestServer, dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    mailbox = mailbox_for(smtp, imap_user, append_to_sent="auto")
    campaign_id = await create_campaign(client, mailbox, people(3))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    await wait_status(client, campaign_id, {"done"}, timeout=30)
    assert sorted(dovecot.fetch_all(imap_user.username, "Sent")) == sorted(
        m.data for m in smtp.messages
    )


async def test_relay_without_smtp_login(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    mailbox = mailbox_for(smtp, imap_user)
    mailbox["smtp"].update(username="", password="")
    campaign_id = await create_campaign(client, mailbox, people(2))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    await wait_status(client, campaign_id, {"done"}, timeout=30)
    failed = (await client.get(f"/api/v1/campaigns/{campaign_id}/messages")).json()
    assert [m.auth_user for m in smtp.messages] == [None, None], [
        m["smtp_reply"] for m in failed["data"]
    ]
    no_imap_login = mailbox_for(smtp, imap_user)
    no_imap_login["imap"]["username"] = ""
    assert (await client.post("/api/v1/mailboxes", json=no_imap_login)).status_code == 422
