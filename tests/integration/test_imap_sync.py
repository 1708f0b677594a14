"""Mailbox sync against real servers: a campaign really sent, then bounces, replies and
auto-replies delivered into Dovecot's bounce folder are read, matched and counted; a hard
bounce suppresses the address for the next campaign."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from pigeon_cli.imap_sync_cmd import sync_all
from pigeon_testing.dovecot import DovecotServer, ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack

from .sending_helpers import create_campaign, mailbox_for, messages, people, wait_status

BOUNCES = "Bounces"


def dsn(
    message_id: str,
    recipient: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
) -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    text = f"""\
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: sender@example.com
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Message-ID: <dsn.{abs(hash((message_id, status))) % 10**9}@mx.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Arrival-Date: Mon, 23 Nov 2026 10:00:00 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: {diagnostic.format(rcpt=recipient)}

--BOUNDARY
Content-Type: text/rfc822-headers

From: Pigeon Tests <sender@example.com>
To: {recipient}
Subject: News
Message-ID: {message_id}

--BOUNDARY--
"""
    return text.replace("\n", "\r\n").encode()


def reply(message_id: str, sender: str, *, auto: bool = False) -> bytes:
    headers = [
        f"From: Someone <{sender}>",
        "To: sender@example.com",
        f"Subject: {'Automatic reply: ' if auto else 'Re: '}News",
        f"Message-ID: <reply.{abs(hash((message_id, auto))) % 10**9}@example.org>",
        f"In-Reply-To: {message_id}",
        f"References: <unrelated@example.net> {message_id}",
    ]
    if auto:
        headers.append("Auto-Submitted: auto-replied")
    body = "I am away until Monday." if auto else "Thanks, sounds good!"
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


async def wait_for(check: Any, timeout: float = 30) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met in {timeout}s (last: {last})")


async def sent_campaign(
    client: httpx.AsyncClient,
    smtp: SmtpTestServer,
    imap: ImapAccount,
    count: int,
    *,
    mailbox_id: str | None = None,
    recipients: list[dict[str, Any]] | None = None,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """A campaign sent to `count` people; its id and its messages by address."""
    box = mailbox_for(smtp, imap, bounce_folder=BOUNCES, append_to_sent="never")
    campaign_id = await create_campaign(
        client, box, recipients or people(count), mailbox_id=mailbox_id
    )
    started = await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    assert started.status_code == 202, started.text
    await wait_status(client, campaign_id, {"done"})
    return campaign_id, {m["email"]: m for m in await messages(client, campaign_id)}


async def stats(client: httpx.AsyncClient, campaign_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/campaigns/{campaign_id}/stats")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_bounce_reply_and_auto_reply_are_read_matched_and_counted(
    running_sender: Stack, smtp: SmtpTestServer, dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    dovecot.create_folder(imap_user.username, BOUNCES)
    campaign_id, sent = await sent_campaign(client, smtp, imap_user, 4)
    mailbox_id = (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()["mailbox_id"]
    p0, p1, p2 = (sent[f"person{i}@example.org"] for i in range(3))

    dovecot.deliver(imap_user.username, BOUNCES, dsn(p0["message_id"], p0["email"]))
    dovecot.deliver(imap_user.username, BOUNCES, reply(p1["message_id"], p1["email"]))
    dovecot.deliver(imap_user.username, BOUNCES, reply(p2["message_id"], p2["email"], auto=True))
    dovecot.deliver(imap_user.username, BOUNCES, b"\xff\xfe not a mail \x00\x01" * 50)
    dovecot.deliver(
        imap_user.username, BOUNCES, b"From: a@b.example\r\nSubject: hello\r\n\r\nunrelated\r\n"
    )
    before = dovecot.fetch_all(imap_user.username, BOUNCES)

    no_service = await client.post(f"/api/v1/mailboxes/{mailbox_id}/sync")
    assert no_service.status_code == 503, no_service.text

    # `pigeon imap-sync` (one pass in this process), before any imap-sync service runs.
    [(name, report)] = [
        r for r in await sync_all(running_sender.settings) if r[1]["mailbox_id"] == mailbox_id
    ]
    assert name == "Test mailbox" and report["error"] == ""
    assert (report["read"], report["bounced"], report["replied"]) == (5, 1, 1), report
    assert (report["auto_replied"], report["skipped"], report["ignored"]) == (1, 1, 1)

    handle = running_sender.start_imap_sync(imap_sync_interval=3600)
    try:
        again = await wait_for(lambda: _sync_now(client, mailbox_id))
        assert (again["read"], again["error"]) == (0, "")  # nothing new

        async def counted() -> dict[str, Any] | None:
            numbers = await stats(client, campaign_id)
            return numbers if numbers["auto_replied"] == 1 and numbers["bounced"] == 1 else None

        numbers = await wait_for(counted)
        assert numbers["bounced_hard"] == 1 and numbers["bounced_soft"] == 0
        assert numbers["bounce_reasons"] == {"user_unknown": 1}
        assert (numbers["replied"], numbers["sent"], numbers["delivered"]) == (1, 4, 3)

        bounced = await client.get(
            f"/api/v1/campaigns/{campaign_id}/messages", params={"state": "bounced_hard"}
        )
        assert [m["email"] for m in bounced.json()["data"]] == [p0["email"]]
        replied = await client.get(
            f"/api/v1/campaigns/{campaign_id}/messages", params={"state": "replied"}
        )
        assert [m["email"] for m in replied.json()["data"]] == [p1["email"]]
        events = (await client.get(f"/api/v1/campaigns/{campaign_id}/delivery-events")).json()
        by_kind = {e["kind"]: e for e in events["data"]}
        assert by_kind["bounced"]["status"] == "5.1.1" and by_kind["bounced"]["hard"]
        assert "User unknown" in by_kind["bounced"]["diagnostic"]
        assert by_kind["bounced"]["reason"] == "user_unknown"
        assert by_kind["auto_replied"]["recipient_id"] == p2["recipient_id"]

        suppressions = (
            await client.get("/api/v1/suppressions", params={"email": p0["email"]})
        ).json()
        assert [(s["reason"], s["mailbox_id"]) for s in suppressions["data"]] == [
            ("hard_bounce", mailbox_id)
        ]
        state = (await client.get(f"/api/v1/mailboxes/{mailbox_id}/sync")).json()
        assert state["skipped"] == 1 and state["folders"][0]["last_uid"] >= 5
        skipped = (await client.get(f"/api/v1/mailboxes/{mailbox_id}/sync/skipped")).json()
        assert [(s["kind"], s["uid"]) for s in skipped["data"]] == [("unparsed", 4)]

        # Nothing counted twice; no mail was deleted.
        assert dovecot.fetch_all(imap_user.username, BOUNCES) == before

        # The next campaign from this mailbox skips the hard-bounced address.
        later = [
            {"email": p0["email"], "name": "P0", "attributes": {"city": "X"}},
            {"email": "fresh@example.org", "name": "F", "attributes": {"city": "Y"}},
        ]
        next_id, next_sent = await sent_campaign(
            client, smtp, imap_user, 0, mailbox_id=mailbox_id, recipients=later
        )
        assert next_sent[p0["email"]]["status"] == "suppressed"
        assert next_sent["fresh@example.org"]["status"] == "sent"
        assert p0["email"] not in [r for m in smtp.messages[-1:] for r in m.rcpt_tos]
        assert (await stats(client, campaign_id))["bounced"] == 1
        assert next_id != campaign_id
    finally:
        await handle.stop()


async def test_idle_watcher_picks_up_new_mail_and_soft_bounces_suppress_on_repeat(
    running_sender: Stack, smtp: SmtpTestServer, dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    dovecot.create_folder(imap_user.username, BOUNCES)
    first, sent1 = await sent_campaign(client, smtp, imap_user, 2)
    mailbox_id = (await client.get(f"/api/v1/campaigns/{first}")).json()["mailbox_id"]
    address = "person0@example.org"
    only_here = {"email": address, "mailbox_id": mailbox_id}
    full = {"status": "5.2.2", "diagnostic": "smtp; 552 5.2.2 Mailbox full"}
    spam = {"status": "5.7.1", "diagnostic": "smtp; 554 5.7.1 Rejected as spam"}

    async def suppressions() -> dict[str, Any]:
        answer = await client.get("/api/v1/suppressions", params=only_here)
        result: dict[str, Any] = answer.json()
        return result

    async def another_campaign() -> str:
        _, sent = await sent_campaign(
            client, smtp, imap_user, 0, mailbox_id=mailbox_id, recipients=people(1)
        )
        return str(sent[address]["message_id"])

    handle = running_sender.start_imap_sync(imap_sync_interval=3600, soft_bounce_limit=2)
    try:
        # Delivered while the watcher IDLEs: read without any "sync now".
        await asyncio.sleep(1)
        message_1 = sent1[address]["message_id"]
        dovecot.deliver(imap_user.username, BOUNCES, dsn(message_1, address, **full))
        numbers = await wait_for(
            lambda: _when(stats(client, first), lambda s: s["bounced_soft"] == 1)
        )
        assert numbers["bounced_hard"] == 0
        # A second report about the same message is not a second message bouncing.
        dovecot.deliver(imap_user.username, BOUNCES, dsn(message_1, address, **full) + b" ")
        # Spam rejections never count, however often they come back.
        for _ in range(2):
            dovecot.deliver(
                imap_user.username, BOUNCES, dsn(await another_campaign(), address, **spam)
            )
        delayed = {"status": "4.4.1", "action": "delayed", "diagnostic": "smtp; 451 try later"}
        message_4 = await another_campaign()
        dovecot.deliver(imap_user.username, BOUNCES, dsn(message_4, address, **delayed))
        await wait_for(
            lambda: _when(
                _json(client.get(f"/api/v1/mailboxes/{mailbox_id}/sync")),
                lambda state: state["folders"] and state["folders"][0]["last_uid"] >= 5,
            )
        )
        await asyncio.sleep(1)  # the projector applies the last events
        assert (await suppressions())["count"] == 0

        # A full mailbox on a second message: the limit (2) is reached.
        dovecot.deliver(imap_user.username, BOUNCES, dsn(message_4, address, **full))
        listed = await wait_for(lambda: _when(suppressions(), lambda page: page["count"] == 1))
        assert listed["data"][0]["reason"] == "soft_bounce"
        assert listed["data"][0]["mailbox_id"] == mailbox_id
    finally:
        await handle.stop()


async def test_processed_mail_is_moved_and_polling_works_without_idle(
    running_sender: Stack, smtp: SmtpTestServer, dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    dovecot.create_folder(imap_user.username, BOUNCES)
    campaign_id, sent = await sent_campaign(client, smtp, imap_user, 1)
    p0 = sent["person0@example.org"]
    dovecot.deliver(imap_user.username, BOUNCES, reply(p0["message_id"], p0["email"]))
    handle = running_sender.start_imap_sync(
        imap_sync_interval=1, imap_sync_idle=False, imap_processed_folder="Processed"
    )
    try:
        await wait_for(lambda: _when(stats(client, campaign_id), lambda s: s["replied"] == 1))
        await wait_for(
            lambda: _async(lambda: len(dovecot.fetch_all(imap_user.username, "Processed")) == 1)
        )
        assert dovecot.fetch_all(imap_user.username, BOUNCES) == []
        # A mail arriving later is found by the next poll.
        dovecot.deliver(
            imap_user.username, BOUNCES, reply(p0["message_id"], p0["email"], auto=True)
        )
        await wait_for(lambda: _when(stats(client, campaign_id), lambda s: s["auto_replied"] == 1))
    finally:
        await handle.stop()


async def _sync_now(client: httpx.AsyncClient, mailbox_id: str) -> dict[str, Any] | None:
    answer = await client.post(f"/api/v1/mailboxes/{mailbox_id}/sync")
    if answer.status_code == 503:
        return None  # imap-sync still starting
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def _when(awaitable: Any, predicate: Any) -> Any:
    value = await awaitable
    return value if predicate(value) else None


async def _json(awaitable: Any) -> Any:
    return (await awaitable).json()


async def _async(check: Any) -> Any:
    return check()


async def test_a_recreated_folder_is_read_from_its_start(
    running_sender: Stack, smtp: SmtpTestServer, dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    dovecot.create_folder(imap_user.username, BOUNCES)
    campaign_id, sent = await sent_campaign(client, smtp, imap_user, 1)
    mailbox_id = (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()["mailbox_id"]
    p0 = sent["person0@example.org"]
    for _ in range(3):
        dovecot.deliver(imap_user.username, BOUNCES, b"From: x@y.example\r\n\r\nhello\r\n")

    async def read() -> dict[str, Any]:
        reports = await sync_all(running_sender.settings, mailbox_id)
        assert len(reports) == 1 and reports[0][1]["error"] == ""
        return reports[0][1]

    first = await read()
    assert (first["read"], first["ignored"]) == (3, 3)
    with dovecot.imap(imap_user.username) as imap:
        imap.delete(BOUNCES)
        imap.create(BOUNCES)
    dovecot.deliver(imap_user.username, BOUNCES, reply(p0["message_id"], p0["email"]))
    second = await read()  # UID 1 again, under a new UIDVALIDITY: read, not skipped
    assert (second["read"], second["replied"]) == (1, 1)
    assert second["uidvalidity"] != first["uidvalidity"]
    await wait_for(lambda: _when(stats(client, campaign_id), lambda s: s["replied"] == 1))


async def test_concurrent_syncs_share_a_small_pool(
    running_sender: Stack, smtp: SmtpTestServer, dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    """More mailboxes syncing at once than the pool has connections: each sync holds one
    connection for its lock and its queries, so none waits for a second one."""
    from pigeon_common import db
    from pigeon_common.jetstream import connect_nats
    from pigeon_common.secrets_box import SecretBox
    from pigeon_imap_sync.sync import MailboxSync, load_accounts

    client = running_sender.client
    assert client is not None
    dovecot.create_folder(imap_user.username, BOUNCES)
    for i in range(4):
        body = mailbox_for(smtp, imap_user, name=f"Pool {i}", bounce_folder=BOUNCES)
        assert (await client.post("/api/v1/mailboxes", json=body)).status_code == 201
    settings = running_sender.settings
    assert settings.database_url is not None and settings.nats_url is not None
    pool = await db.open_pool(settings.database_url, max_size=2)
    nc = await connect_nats(settings.nats_url, name="test", attempts=3)
    try:
        accounts = [
            a
            for a in await load_accounts(pool, SecretBox(settings.keys()))
            if a.name.startswith("Pool ")
        ]
        assert len(accounts) == 4
        syncer = MailboxSync(pool, nc.jetstream(), settings)
        reports = await asyncio.wait_for(
            asyncio.gather(*(syncer.sync(a) for a in accounts)), timeout=60
        )
        assert [(r.error, r.busy) for r in reports] == [("", False)] * 4
    finally:
        await nc.close()
        await pool.close()
