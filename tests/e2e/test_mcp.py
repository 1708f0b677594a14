"""The MCP gateway as an agent uses it: the SDK's own client against `pigeon up`, over
streamable HTTP (bearer token) and over stdio (`pigeon mcp` with PIGEON_TOKEN)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from pigeon_embedded.ports import free_port
from pigeon_testing.dovecot import ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from tests.integration.sending_helpers import mailbox_for, parse, people

TEMPLATE = "Hello **{{ recipient.name }}**, [read the news](https://example.com/news)."


@dataclass
class Up:
    env: dict[str, str]
    api: str
    mcp: str
    token: str
    admin_email: str
    admin_password: str

    async def rest(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.request(
                method,
                f"{self.api}/api/v1{path}",
                headers={"Authorization": f"Bearer {token or self.token}"},
                **kwargs,
            )
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready:\n{log.read_text()}")


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    folder = tmp_path_factory.mktemp("up-mcp")
    api_port, mcp_port = free_port(), free_port()
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
        PIGEON_TRACKER_PORT=str(free_port()),
        PIGEON_IMAP_SYNC_PORT=str(free_port()),
        PIGEON_MCP_PORT=str(mcp_port),
        PIGEON_IMAP_SYNC_INTERVAL="3600",
    )
    log = folder / "up.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "pigeon_cli", "up"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    api, mcp = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{mcp_port}"
    try:
        _wait(f"{api}/readyz", process, log)
        _wait(f"{mcp}/readyz", process, log)
        output = log.read_text()
        assert f"{mcp}/mcp" in output, output
        token = re.search(r"token:\s+(pgn_\S+)", output)
        email = re.search(r"email:\s+(\S+)", output)
        password = re.search(r"password:\s+(\S+)", output)
        assert token and email and password, output
        yield Up(env, api, f"{mcp}/mcp", token.group(1), email.group(1), password.group(1))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


@asynccontextmanager
async def http_client(up: Up, token: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(up.mcp, http_client=http)) as client,
    ):
        yield client


def _content(result: Any) -> dict[str, Any]:
    data = result.structured_content
    if data is None:
        data = json.loads(result.content[0].text)
    # A tool returning a union or a list has its value under "result".
    return data["result"] if set(data) == {"result"} else data


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool}: {result.content}"
    return _content(result)


async def fails(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} should fail: {result.structured_content}"
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert "Traceback" not in text
    return text


async def _until(client: Client, tool: str, done: Any, **arguments: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    value: dict[str, Any] = {}
    while time.monotonic() < deadline:
        value = await call(client, tool, **arguments)
        if done(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{tool} never got there: {value}")


def _mailbox_args(smtp: SmtpTestServer, imap: ImapAccount) -> dict[str, Any]:
    body = mailbox_for(smtp, imap)
    keep = ("name", "from_name", "from_address", "smtp", "imap", "sent_folder", "append_to_sent")
    return {k: body[k] for k in keep}


async def _campaign_flow(
    client: Client, smtp: SmtpTestServer, imap: ImapAccount, name: str
) -> dict[str, Any]:
    """Mailbox, campaign, three recipients (one suppressed), dry run, preview, send."""
    mailbox = await call(client, "create_mailbox", **_mailbox_args(smtp, imap))
    assert mailbox["smtp"]["password_set"] and "password" not in mailbox["smtp"]
    assert smtp.password not in json.dumps(mailbox)
    tested = await call(client, "test_mailbox_connection", mailbox_id=mailbox["id"])
    assert tested["smtp"]["ok"] and tested["imap"]["ok"], tested
    assert "INBOX" in {f["name"] for f in tested["folders"]}
    campaign = await call(
        client,
        "create_campaign",
        name=name,
        subject="News for {{ recipient.name }}",
        template_markdown=TEMPLATE,
        mailbox_id=mailbox["id"],
    )
    cid = campaign["id"]
    tag = uuid.uuid4().hex[:8]
    folks = [{**p, "email": p["email"].replace("@", f"+{tag}@")} for p in people(3)]
    added = await call(client, "add_recipients", campaign_id=cid, recipients=folks)
    assert added["imported"] == 3
    await call(client, "add_suppression", email=folks[2]["email"], mailbox_id=mailbox["id"])

    dry = await call(client, "dry_run", campaign_id=cid, limit=3)
    assert [m["subject"] for m in dry["messages"]] == [f"News for {p['name']}" for p in folks]
    assert dry["links"] == ["https://example.com/news"]

    preview = await call(client, "send_campaign", campaign_id=cid)
    assert preview["sent"] is False and preview["can_send"] is True
    assert (preview["recipients"], preview["suppressed"], preview["would_send"]) == (3, 1, 2)
    assert preview["first_subject"] == f"News for {folks[0]['name']}"
    assert preview["warnings"] == []
    await asyncio.sleep(0.5)
    assert smtp.messages == []
    status = await call(client, "campaign_status", campaign_id=cid)
    assert status["status"] == "draft"

    started = await call(client, "send_campaign", campaign_id=cid, confirm=True)
    assert started["recipients"] == 3 and started["status"] == "sending"
    final = await _until(
        client, "campaign_status", lambda s: s["status"] == "done", campaign_id=cid
    )
    assert (final["sent"], final["suppressed"]) == (2, 1)
    assert sorted(smtp.recipients()) == sorted(p["email"] for p in folks[:2])
    return {"campaign": campaign, "mailbox": mailbox, "people": folks}


async def test_http_client_runs_a_campaign_end_to_end(
    up: Up, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    async with http_client(up, up.token) as client:
        assert "public_base_url" in (client.instructions or "") or "Tracking" in (
            client.instructions or ""
        )
        tools = (await client.list_tools()).tools
        assert len(tools) >= 30
        for tool in tools:
            hints = tool.annotations
            assert hints is not None, tool.name
            assert None not in (
                hints.read_only_hint,
                hints.destructive_hint,
                hints.idempotent_hint,
                hints.open_world_hint,
            ), tool.name
            assert tool.input_schema["type"] == "object", tool.name
            assert tool.description, tool.name

        env = json.loads((await client.read_resource("pigeon://environment")).contents[0].text)
        tracker = up.env["PIGEON_TRACKER_PORT"]
        assert env["public_base_url"] == f"http://127.0.0.1:{tracker}"
        assert env["url_forms"]["pixel"].endswith("/campaigns/o/<token>/p.png")

        flow = await _campaign_flow(client, smtp, imap_user, "MCP over HTTP")
        cid = flow["campaign"]["id"]

        html = parse(smtp.messages[0].data).get_body(preferencelist=("html",)).get_content()
        pixel = re.search(r'src="(http://127\.0\.0\.1:\d+/campaigns/o/[^"]+)"', html)
        click = re.search(r'href="(http://127\.0\.0\.1:\d+/campaigns/t/[^"]+)"', html)
        assert pixel and click, html
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(pixel.group(1))).status_code == 200
            assert (await http.get(click.group(1))).status_code in (302, 303, 307)

        stats = await _until(
            client,
            "campaign_stats",
            lambda s: s["opened"] >= 1 and s["clicked"] >= 1,
            campaign_id=cid,
        )
        assert (stats["sent"], stats["suppressed"]) == (2, 1)
        opens = await call(client, "list_opens", campaign_id=cid)
        clicks = await call(client, "list_clicks", campaign_id=cid)
        assert opens["count"] >= 1 and clicks["count"] >= 1
        assert clicks["data"][0]["url"] == "https://example.com/news"
        links = await call(client, "list_links", campaign_id=cid)
        assert links["data"][0]["clicks"] >= 1
        sent = await call(client, "list_messages", campaign_id=cid, status="sent")
        assert sent["count"] == 2
        report = await client.read_resource(f"pigeon://campaigns/{cid}/report")
        assert json.loads(report.contents[0].text)["stats"]["sent"] == 2

        # API errors come back as tool errors with the API's message, not a traceback.
        missing = await fails(client, "get_campaign", campaign_id=str(uuid.uuid4()))
        assert "campaign not found" in missing
        locked = await fails(client, "update_campaign", campaign_id=cid, name="Too late")
        assert "campaign_locked" in locked
        bad = await fails(client, "create_campaign", name="Bad", subject="Hi {{ recipient.name ")
        assert "subject" in bad


def test_http_refuses_a_missing_or_wrong_token(up: Up) -> None:
    no_token = httpx.post(up.mcp, json={}, timeout=10)
    assert no_token.status_code == 401
    wrong = httpx.post(up.mcp, json={}, headers={"Authorization": "Bearer pgn_wrong"}, timeout=10)
    assert wrong.status_code == 401


async def test_stdio_client_through_pigeon_mcp(
    up: Up, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PIGEON_TOKEN": up.token,
        "PIGEON_API_URL": up.api,
        "PIGEON_DATA_DIR": up.env["PIGEON_DATA_DIR"],
        "PIGEON_TRACKER_PORT": up.env["PIGEON_TRACKER_PORT"],
    }
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "pigeon_cli", "mcp"], env=env
    )
    async with Client(params) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"create_campaign", "send_campaign", "campaign_stats"} <= tools
        flow = await _campaign_flow(client, smtp, imap_user, "MCP over stdio")
        stats = await call(client, "campaign_stats", campaign_id=flow["campaign"]["id"])
        assert stats["sent"] == 2


# The three tests below hold the gateway to the REST API's access contract (read-only
# tokens, ownership, Idempotency-Key): the gateway adds no rule of its own, so they pass
# exactly when the API keeps that contract.


async def _draft(up: Up, smtp: SmtpTestServer, imap: ImapAccount, name: str) -> dict[str, Any]:
    mailbox = await up.rest("POST", "/mailboxes", json=mailbox_for(smtp, imap))
    campaign = await up.rest(
        "POST",
        "/campaigns",
        json={
            "name": name,
            "subject": "Hi",
            "template_markdown": TEMPLATE,
            "mailbox_id": mailbox["id"],
        },
    )
    recipient = await up.rest(
        "POST", f"/campaigns/{campaign['id']}/recipients", json={"email": "ro@example.org"}
    )
    return {"mailbox": mailbox, "campaign": campaign, "recipient": recipient}


def _write_calls(draft: dict[str, Any], smtp: SmtpTestServer, imap: ImapAccount) -> dict[str, Any]:
    cid, mid = draft["campaign"]["id"], draft["mailbox"]["id"]
    return {
        "create_campaign": {"name": "No", "subject": "No"},
        "update_campaign": {"campaign_id": cid, "name": "Changed"},
        "delete_campaign": {"campaign_id": cid},
        "clone_campaign": {"campaign_id": cid},
        "add_recipient": {"campaign_id": cid, "email": "new@example.org"},
        "add_recipients": {"campaign_id": cid, "recipients": [{"email": "new@example.org"}]},
        "import_recipients_csv": {"campaign_id": cid, "csv_text": "email\nnew@example.org\n"},
        "delete_recipient": {"campaign_id": cid, "recipient_id": draft["recipient"]["id"]},
        "test_send": {"campaign_id": cid, "email": "test@example.org"},
        "send_campaign": {"campaign_id": cid, "confirm": True},
        "schedule_campaign": {"campaign_id": cid, "send_at": "2099-01-01T00:00:00+00:00"},
        "unschedule_campaign": {"campaign_id": cid},
        "pause_campaign": {"campaign_id": cid},
        "resume_campaign": {"campaign_id": cid},
        "cancel_campaign": {"campaign_id": cid},
        "add_suppression": {"email": "ro@example.org"},
        "lift_suppression": {"email": "ro@example.org"},
        "create_mailbox": _mailbox_args(smtp, imap),
        "sync_mailbox": {"mailbox_id": mid},
        "test_mailbox_connection": {"mailbox_id": mid},
    }


async def test_read_only_token_can_read_but_every_write_tool_fails(
    up: Up, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    tokens = await up.rest(
        "POST", "/auth/token", json={"email": up.admin_email, "password": up.admin_password}
    )
    read_only = tokens["read_only_token"]
    draft = await _draft(up, smtp, imap_user, "Read-only check")
    cid = draft["campaign"]["id"]
    before = [
        await up.rest("GET", f"/campaigns/{cid}"),
        await up.rest("GET", "/campaigns"),
        await up.rest("GET", f"/campaigns/{cid}/recipients"),
        await up.rest("GET", "/mailboxes"),
        await up.rest("GET", "/suppressions"),
    ]
    async with http_client(up, read_only) as client:
        assert (await call(client, "get_campaign", campaign_id=cid))["name"] == "Read-only check"
        tools = (await client.list_tools()).tools
        writes = {t.name for t in tools if t.annotations and not t.annotations.read_only_hint}
        calls = _write_calls(draft, smtp, imap_user)
        assert writes == set(calls), "every write tool is tried"
        for tool, arguments in calls.items():
            text = await fails(client, tool, **arguments)
            assert "forbidden" in text, f"{tool}: {text}"
    after = [
        await up.rest("GET", f"/campaigns/{cid}"),
        await up.rest("GET", "/campaigns"),
        await up.rest("GET", f"/campaigns/{cid}/recipients"),
        await up.rest("GET", "/mailboxes"),
        await up.rest("GET", "/suppressions"),
    ]
    assert after == before
    assert smtp.messages == []


async def test_another_users_campaign_is_not_found(
    up: Up, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    draft = await _draft(up, smtp, imap_user, "Admin's own")
    email, password = f"member-{uuid.uuid4().hex[:8]}@example.org", "member-password-123"
    await up.rest("POST", "/users", json={"email": email, "password": password})
    other = await up.rest("POST", "/auth/token", json={"email": email, "password": password})
    async with http_client(up, other["token"]) as client:
        text = await fails(client, "get_campaign", campaign_id=draft["campaign"]["id"])
        assert "not found" in text
        listed = await call(client, "list_campaigns")
        assert draft["campaign"]["id"] not in {c["id"] for c in listed["data"]}


async def test_a_retried_create_with_the_same_key_creates_one_campaign(up: Up) -> None:
    key = f"retry-{uuid.uuid4()}"
    async with http_client(up, up.token) as client:
        before = (await call(client, "list_campaigns", limit=1000))["count"]
        first = await call(
            client, "create_campaign", name="Once", subject="Once", idempotency_key=key
        )
        again = await call(
            client, "create_campaign", name="Once", subject="Once", idempotency_key=key
        )
        assert again["id"] == first["id"]
        after = (await call(client, "list_campaigns", limit=1000))["count"]
        assert after == before + 1
