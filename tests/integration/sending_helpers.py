"""Building blocks of the sending tests: a mailbox on the test servers, a campaign with
recipients, and waiting for a campaign to reach a status."""

from __future__ import annotations

import asyncio
import email
import email.policy
from email.message import EmailMessage
from typing import Any

import httpx

from pigeon_testing.dovecot import ImapAccount
from pigeon_testing.smtp import SmtpTestServer

TEMPLATE = """# Hello {{ recipient.name }}

Your city: **{{ recipient.city }}**.

[Read the news](https://example.com/news?id=1) or [the blog](https://example.com/blog).
"""


def mailbox_for(
    smtp: SmtpTestServer, imap: ImapAccount, *, password: str | None = None, **extra: Any
) -> dict[str, Any]:
    body = {
        "name": "Test mailbox",
        "from_name": "Pigeon Tests",
        "from_address": "sender@example.com",
        "smtp": {
            "host": smtp.host,
            "port": smtp.port,
            "security": "plain",
            "username": smtp.username,
            "password": password or smtp.password,
        },
        "imap": {
            "host": imap.host,
            "port": imap.port,
            "security": "plain",
            "username": imap.username,
            "password": imap.password,
        },
        "sent_folder": "",
        "append_to_sent": "always",
    }
    body.update(extra)
    return body


async def create_campaign(
    client: httpx.AsyncClient,
    mailbox: dict[str, Any],
    recipients: list[dict[str, Any]],
    *,
    template: str = TEMPLATE,
    subject: str = "News for {{ recipient.name }}",
    mailbox_id: str | None = None,
) -> str:
    """A campaign with these recipients, on a new mailbox (or on `mailbox_id`)."""
    if mailbox_id is None:
        created = await client.post("/api/v1/mailboxes", json=mailbox)
        assert created.status_code == 201, created.text
        mailbox_id = created.json()["id"]
    campaign = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "Sending test",
            "subject": subject,
            "template_markdown": template,
            "mailbox_id": mailbox_id,
        },
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id = str(campaign.json()["id"])
    for start in range(0, len(recipients), 10_000):
        added = await client.post(
            f"/api/v1/campaigns/{campaign_id}/recipients/bulk",
            json={"recipients": recipients[start : start + 10_000]},
        )
        assert added.status_code == 200, added.text
    return campaign_id


def people(count: int, domain: str = "example.org") -> list[dict[str, Any]]:
    return [
        {"email": f"person{i}@{domain}", "name": f"Person {i}", "attributes": {"city": f"City {i}"}}
        for i in range(count)
    ]


async def wait_status(
    client: httpx.AsyncClient, campaign_id: str, wanted: set[str], timeout: float = 60
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state: dict[str, Any] = {}
    while loop.time() < deadline:
        state = (await client.get(f"/api/v1/campaigns/{campaign_id}/status")).json()
        if state.get("status") in wanted:
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"campaign never reached {wanted}: {state}")


async def messages(
    client: httpx.AsyncClient, campaign_id: str, status: str | None = None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 1000}
    if status:
        params["status"] = status
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = (
            await client.get(
                f"/api/v1/campaigns/{campaign_id}/messages", params={**params, "offset": offset}
            )
        ).json()
        rows.extend(page["data"])
        offset += 1000
        if offset >= page["count"]:
            return rows


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message
