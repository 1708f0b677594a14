"""Campaign results over REST: what the tracker and imap-sync record (stored here as their
events) shows up in stats, per-message states, lists, the CSV export and suppressions."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import httpx

from pigeon_common import events as ev
from pigeon_common.jetstream import connect_nats, publish_events
from pigeon_testing.dovecot import ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack

from .api_helpers import assert_error_shape
from .sending_helpers import create_campaign, mailbox_for, messages, people, wait_status


async def _store(stack: Stack, envelopes: list[ev.Envelope]) -> None:
    assert stack.settings.nats_url is not None
    nc = await connect_nats(stack.settings.nats_url, name="test", attempts=3)
    try:
        seq = max(await publish_events(nc.jetstream(), envelopes))
    finally:
        await nc.close()
    assert await _projected(stack, seq)


async def _projected(stack: Stack, seq: int) -> bool:
    from pigeon_common import db

    assert stack.settings.database_url is not None
    conn = await db.connect(stack.settings.database_url)
    try:
        import asyncio

        for _ in range(300):
            done = await conn.fetchval(
                "SELECT last_seq FROM projection_checkpoints WHERE projection = 'read_models'"
            )
            if done is not None and done >= seq:
                return True
            await asyncio.sleep(0.05)
        return False
    finally:
        await conn.close()


async def test_results_reach_stats_states_lists_and_export(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(4))
    assert (await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})).status_code == 202
    await wait_status(client, campaign_id, {"done"})
    rows = {m["email"]: m for m in await messages(client, campaign_id)}
    mailbox_id = uuid.UUID(
        (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()["mailbox_id"]
    )
    cid = uuid.UUID(campaign_id)
    r0, r1, r2, r3 = (uuid.UUID(rows[f"person{i}@example.org"]["recipient_id"]) for i in range(4))
    sent_at = max(_time(m["at"]) for m in rows.values())

    def at(seconds: float, event: ev.Event) -> ev.Envelope:
        return ev.envelope_for(event, campaign_id, occurred_at=sent_at + timedelta(seconds=seconds))

    def opened(rid: uuid.UUID, **extra: Any) -> ev.MessageOpened:
        fields: dict[str, Any] = {"machine": False, **extra}
        return ev.MessageOpened(campaign_id=cid, recipient_id=rid, **fields)

    link = "https://example.com/news?id=1"
    await _store(
        running_sender,
        [
            at(1, opened(r0)),  # within 10 s of sending: a prefetch, a machine's
            at(60, opened(r0)),
            at(90, opened(r0)),  # the same person again: still one unique opener
            at(60, opened(r1, machine=True, machine_reason="apple_mpp")),
            at(
                70,
                ev.LinkClicked(
                    campaign_id=cid, recipient_id=r0, link_index=0, url=link, machine=False
                ),
            ),
            at(
                70,
                ev.LinkClicked(
                    campaign_id=cid,
                    recipient_id=r1,
                    link_index=0,
                    url=link,
                    machine=True,
                    machine_reason="head",
                ),
            ),
            at(
                80,
                ev.RecipientUnsubscribed(
                    campaign_id=cid,
                    recipient_id=r1,
                    email="person1@example.org",
                    mailbox_id=mailbox_id,
                    method="one_click",
                ),
            ),
            at(
                100,
                ev.MessageBounced(
                    campaign_id=cid,
                    recipient_id=r2,
                    email="person2@example.org",
                    mailbox_id=mailbox_id,
                    hard=False,
                    status="5.2.2",
                    action="failed",
                    diagnostic="mailbox full",
                    suppress=False,
                    source="m:1:1",
                    reason="mailbox_full",
                    evidence="diagnostic text: mailbox full",
                ),
            ),
            at(
                110,
                ev.MessageReplied(
                    campaign_id=cid,
                    recipient_id=r3,
                    from_address="person3@example.org",
                    subject="Re: News",
                    reply_message_id="r@x",
                    source="m:1:2",
                ),
            ),
        ],
    )

    stats = (await client.get(f"/api/v1/campaigns/{campaign_id}/stats")).json()
    assert (stats["sent"], stats["delivered"], stats["bounced_soft"]) == (4, 3, 1)
    assert stats["bounce_reasons"] == {"mailbox_full": 1}
    assert (stats["opens"], stats["opened"], stats["opened_human"], stats["opened_machine"]) == (
        4,
        2,
        1,
        2,
    )
    assert (stats["clicks"], stats["clicked"], stats["clicked_human"]) == (2, 2, 1)
    assert (stats["replied"], stats["unsubscribed"], stats["bounced_hard"]) == (1, 1, 0)
    assert stats["open_rate"] == round(1 / 3, 4) and stats["click_rate"] == round(1 / 3, 4)
    assert stats["links"][0]["url"] == link and stats["links"][0]["clicked_human"] == 1

    async def state(name: str) -> list[str]:
        page = await client.get(f"/api/v1/campaigns/{campaign_id}/messages", params={"state": name})
        assert page.status_code == 200, page.text
        assert page.json()["count"] == len(page.json()["data"])
        return [m["email"] for m in page.json()["data"]]

    assert await state("opened") == ["person0@example.org", "person1@example.org"]
    assert await state("opened_human") == ["person0@example.org"]
    assert await state("clicked_human") == ["person0@example.org"]
    assert await state("unsubscribed") == ["person1@example.org"]
    assert await state("bounced_soft") == ["person2@example.org"]
    assert await state("bounced_hard") == []
    assert await state("replied") == ["person3@example.org"]
    bad = await client.get(f"/api/v1/campaigns/{campaign_id}/messages", params={"state": "nope"})
    assert_error_shape(bad, 422)

    opens = (
        await client.get(f"/api/v1/campaigns/{campaign_id}/opens", params={"recipient_id": str(r0)})
    ).json()
    assert opens["count"] == 3
    assert [o["machine_reason"] for o in opens["data"]] == ["", "", "prefetch"]
    machine_clicks = (
        await client.get(f"/api/v1/campaigns/{campaign_id}/clicks", params={"machine": "true"})
    ).json()
    assert [c["machine_reason"] for c in machine_clicks["data"]] == ["head"]

    export = await client.get(f"/api/v1/campaigns/{campaign_id}/messages/export")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    table = {row["email"]: row for row in csv.DictReader(io.StringIO(export.text))}
    assert len(table) == 4
    assert table["person0@example.org"]["human_opens"] == "2"
    assert table["person1@example.org"]["unsubscribed"] == "true"
    assert table["person2@example.org"]["bounce"] == "soft"
    assert table["person3@example.org"]["replied"] == "true"
    assert all(row["status"] == "sent" and row["sent_at"] for row in table.values())

    # The unsubscribe suppressed the address for the mailbox; lifting it by hand works once.
    listed = (
        await client.get("/api/v1/suppressions", params={"mailbox_id": str(mailbox_id)})
    ).json()
    assert [(s["email"], s["reason"]) for s in listed["data"]] == [
        ("person1@example.org", "unsubscribed")
    ]
    params = {"email": "person1@example.org", "mailbox_id": str(mailbox_id)}
    assert (await client.delete("/api/v1/suppressions", params=params)).status_code == 204
    assert_error_shape(await client.delete("/api/v1/suppressions", params=params), 404)
    listed = (
        await client.get("/api/v1/suppressions", params={"mailbox_id": str(mailbox_id)})
    ).json()
    assert listed["count"] == 0


async def test_result_endpoints_refuse_bad_input(sending_stack: Stack) -> None:
    stack = sending_stack
    client = stack.client
    assert client is not None
    unknown = uuid.uuid4()
    for path in ("stats", "opens", "clicks", "delivery-events", "messages/export"):
        assert_error_shape(await client.get(f"/api/v1/campaigns/{unknown}/{path}"), 404)
    assert_error_shape(await client.get("/api/v1/campaigns/not-a-uuid/stats"), 422)
    assert_error_shape(
        await client.get("/api/v1/suppressions", params={"email": "not an address"}), 422
    )
    assert_error_shape(await client.delete("/api/v1/suppressions"), 422)
    assert_error_shape(await client.get("/api/v1/suppressions", params={"reason": "whatever"}), 422)
    assert_error_shape(await client.post(f"/api/v1/mailboxes/{unknown}/sync"), 404)
    assert_error_shape(await client.get(f"/api/v1/mailboxes/{unknown}/sync"), 404)
    no_token = httpx.AsyncClient(base_url=stack.base_url)
    try:
        assert (await no_token.get(f"/api/v1/campaigns/{unknown}/stats")).status_code == 401
        assert (await no_token.get("/api/v1/suppressions")).status_code == 401
    finally:
        await no_token.aclose()


def _time(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)
