"""Mailboxes, campaigns and recipients over REST, read back from the read models."""

from __future__ import annotations

import csv
import io
import logging

import asyncpg
import pytest
from nats.js.api import ConsumerConfig

from pigeon_common.jetstream import EVENTS_STREAM, connect_nats
from pigeon_testing.stack import Stack

from .api_helpers import (
    IMAP_PASSWORD,
    SMTP_PASSWORD,
    assert_error_shape,
    campaign_body,
    mailbox_body,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _all_events(stack: Stack) -> bytes:
    assert stack.settings.nats_url is not None
    nc = await connect_nats(stack.settings.nats_url, name="test", attempts=3)
    try:
        js = nc.jetstream()
        last = (await js.stream_info(EVENTS_STREAM)).state.last_seq
        sub = await js.pull_subscribe(
            "pigeon.events.>", stream=EVENTS_STREAM, config=ConsumerConfig()
        )
        data = b""
        seen = 0
        while seen < last:
            for msg in await sub.fetch(500, timeout=5):
                data += msg.data + b"\n"
                seen = msg.metadata.sequence.stream
                await msg.ack()
        await sub.unsubscribe()
        return data
    finally:
        await nc.close()


async def test_mailbox_passwords_never_leave(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    assert stack.client is not None
    caplog.set_level(logging.DEBUG)
    created = await stack.client.post("/api/v1/mailboxes", json=mailbox_body())
    assert created.status_code == 201, created.text
    mailbox = created.json()
    assert mailbox["smtp"] == {
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "username": "ann",
        "password_set": True,
    }
    patched = await stack.client.patch(
        f"/api/v1/mailboxes/{mailbox['id']}",
        json={"smtp": {"password": SMTP_PASSWORD + "-2"}, "rate_per_hour": 100},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["rate_per_hour"] == 100
    assert patched.json()["imap"]["host"] == "imap.example.com"
    responses = [
        created.text,
        patched.text,
        (await stack.client.get(f"/api/v1/mailboxes/{mailbox['id']}")).text,
        (await stack.client.get("/api/v1/mailboxes")).text,
        (await stack.client.get("/api/v1/openapi.json")).text,
    ]
    events = await _all_events(stack)
    assert stack.settings.database_url is not None
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        stored = await conn.fetchrow(
            "SELECT smtp_password, imap_password FROM mailbox_secrets WHERE mailbox_id = $1",
            mailbox["id"],
        )
        dump = "\n".join(
            str(tuple(r.values())) for r in await conn.fetch("SELECT * FROM mailboxes")
        )
    finally:
        await conn.close()
    from pigeon_common.secrets_box import SecretBox

    box = SecretBox(stack.settings.keys())
    assert box.decrypt(stored["smtp_password"]) == SMTP_PASSWORD + "-2"
    assert box.decrypt(stored["imap_password"]) == IMAP_PASSWORD
    for secret in (SMTP_PASSWORD, IMAP_PASSWORD):
        for text in [*responses, events.decode(), dump, caplog.text, str(tuple(stored.values()))]:
            assert secret not in text


async def test_mailbox_in_use_cannot_be_deleted(stack: Stack) -> None:
    assert stack.client is not None
    mailbox = (await stack.client.post("/api/v1/mailboxes", json=mailbox_body())).json()
    campaign = (
        await stack.client.post("/api/v1/campaigns", json=campaign_body(mailbox_id=mailbox["id"]))
    ).json()
    assert_error_shape(await stack.client.delete(f"/api/v1/mailboxes/{mailbox['id']}"), 409)
    assert (await stack.client.delete(f"/api/v1/campaigns/{campaign['id']}")).status_code == 204
    assert (await stack.client.delete(f"/api/v1/mailboxes/{mailbox['id']}")).status_code == 204
    assert_error_shape(await stack.client.get(f"/api/v1/mailboxes/{mailbox['id']}"), 404)


async def test_campaign_lifecycle(stack: Stack) -> None:
    assert stack.client is not None
    campaign = (await stack.client.post("/api/v1/campaigns", json=campaign_body())).json()
    assert campaign["status"] == "draft"
    assert campaign["recipient_count"] == 0
    url = f"/api/v1/campaigns/{campaign['id']}"
    updated = await stack.client.patch(url, json={"subject": "New subject"})
    assert updated.status_code == 200
    assert updated.json()["subject"] == "New subject"
    assert updated.json()["name"] == "Launch"
    assert_error_shape(await stack.client.patch(url, json={"name": None}), 422, mentions="name")
    assert (await stack.client.delete(url)).status_code == 204
    assert_error_shape(await stack.client.get(url), 404)


async def test_campaign_that_started_sending_is_locked(stack: Stack) -> None:
    assert stack.client is not None
    campaign = (await stack.client.post("/api/v1/campaigns", json=campaign_body())).json()
    url = f"/api/v1/campaigns/{campaign['id']}"
    assert stack.settings.database_url is not None
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        # The sender issue adds the events that move a campaign to `sending`.
        await conn.execute("UPDATE campaigns SET status = 'sending' WHERE id = $1", campaign["id"])
    finally:
        await conn.close()
    for response in (
        await stack.client.patch(url, json={"name": "changed"}),
        await stack.client.delete(url),
        await stack.client.post(f"{url}/recipients", json={"email": "late@example.com"}),
    ):
        error = assert_error_shape(response, 409, mentions="started sending")
        assert error["code"] == "campaign_locked"
    assert (await stack.client.get(url)).json()["name"] == "Launch"


async def test_recipients_merge_filter_page_and_export(stack: Stack) -> None:
    assert stack.client is not None
    campaign = (await stack.client.post("/api/v1/campaigns", json=campaign_body())).json()
    base = f"/api/v1/campaigns/{campaign['id']}/recipients"
    one = await stack.client.post(
        base, json={"email": "Ann@Example.COM", "name": "Ann", "attributes": {"city": "Paris"}}
    )
    assert one.status_code == 201, one.text
    assert one.json()["email"] == "Ann@example.com"
    bulk = await stack.client.post(
        f"{base}/bulk",
        json={
            "recipients": [
                {"email": "ann@example.com", "attributes": {"plan": "pro"}},
                {"email": "bob@example.com", "name": "Bob", "attributes": {"city": "Rome"}},
                {"email": "BOB@example.com", "name": "Robert", "attributes": {"plan": "=1+1"}},
            ]
        },
    )
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["imported"] == 2 and bulk.json()["merged"] == 1
    csv_data = "email,name,city\ncara@example.com,Cara,Paris\n" + "".join(
        f"user{i}@example.com,User {i},Oslo\n" for i in range(60)
    )
    imported = await stack.client.post(
        f"{base}/import", files={"file": ("people.csv", csv_data.encode(), "text/csv")}
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["imported"] == 61

    listed = (await stack.client.get(base, params={"limit": 1000})).json()
    assert listed["count"] == 63
    by_email = {r["email"].lower(): r for r in listed["data"]}
    assert by_email["ann@example.com"]["name"] == "Ann"
    assert by_email["ann@example.com"]["attributes"] == {"city": "Paris", "plan": "pro"}
    assert by_email["bob@example.com"]["name"] == "Robert"

    page = (await stack.client.get(base, params={"limit": 10, "offset": 10})).json()
    assert len(page["data"]) == 10 and page["count"] == 63
    paris = (await stack.client.get(base, params={"attr": "city:Paris"})).json()
    assert {r["email"].lower() for r in paris["data"]} == {"ann@example.com", "cara@example.com"}
    found = (await stack.client.get(base, params={"q": "robert"})).json()
    assert [r["email"] for r in found["data"]] == ["bob@example.com"]
    exact = (await stack.client.get(base, params={"email": "CARA@example.com"})).json()
    assert exact["count"] == 1

    exported = await stack.client.get(f"{base}/export")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 63
    assert set(rows[0]) == {"email", "name", "city", "plan"}
    ann = next(r for r in rows if r["email"].lower() == "ann@example.com")
    assert (ann["city"], ann["plan"]) == ("Paris", "pro")
    bob = next(r for r in rows if r["email"].lower() == "bob@example.com")
    assert bob["plan"] == "'=1+1"  # a formula stays text in a spreadsheet

    rid = by_email["cara@example.com"]["id"]
    assert (await stack.client.delete(f"{base}/{rid}")).status_code == 204
    assert_error_shape(await stack.client.get(f"{base}/{rid}"), 404)
    assert (await stack.client.get(f"/api/v1/campaigns/{campaign['id']}")).json()[
        "recipient_count"
    ] == 62


async def test_openapi_describes_the_api(stack: Stack) -> None:
    assert stack.client is not None
    spec = (await stack.client.get("/api/v1/openapi.json")).json()
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "create_mailbox",
        "list_mailboxes",
        "get_mailbox",
        "update_mailbox",
        "delete_mailbox",
        "create_campaign",
        "list_campaigns",
        "get_campaign",
        "update_campaign",
        "delete_campaign",
        "add_recipient",
        "add_recipients",
        "import_recipients",
        "export_recipients",
        "list_recipients",
        "delete_recipient",
        "create_token",
        "create_user",
    } <= operations
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
