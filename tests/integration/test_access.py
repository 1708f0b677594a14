"""Access between users, against the real API: who sees and changes what, read-only
tokens on every write route, credentials that never follow a changed server, and owners
and shares that a rebuild from the stream gives back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pigeon_common.db import connect
from pigeon_common.jetstream import connect_nats
from pigeon_projector.rebuild import rebuild
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack

from .api_helpers import SMTP_PASSWORD, assert_error_shape, campaign_body, mailbox_body

pytestmark = pytest.mark.asyncio(loop_scope="session")
PASSWORD = "a-long-enough-password"
NIL = "8d3b2a1c-7e90-4c55-9f0e-6f2c1d4e2b7a"


@dataclass
class User:
    id: str
    email: str
    rw: httpx.AsyncClient
    ro: httpx.AsyncClient


@dataclass
class World:
    stack: Stack
    admin: httpx.AsyncClient
    ann: User  # member: owns mailbox_a and campaign_a
    bob: User  # member: owns mailbox_b and campaign_b; mailbox_a is shared with him
    val: User  # viewer: campaign_a is shared with her
    mailbox_a: str
    mailbox_b: str
    campaign_a: str
    campaign_b: str


def _client(stack: Stack, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


async def _user(stack: Stack, email: str, role: str) -> User:
    assert stack.client is not None
    created = await stack.client.post(
        "/api/v1/users", json={"email": email, "password": PASSWORD, "role": role}
    )
    assert created.status_code == 201, created.text
    tokens = await stack.client.post(
        "/api/v1/auth/token", json={"email": email, "password": PASSWORD}
    )
    body = tokens.json()
    assert body["token"].startswith("pgn_") and body["read_only_token"].startswith("pgr_")
    return User(
        created.json()["id"],
        email,
        _client(stack, body["token"]),
        _client(stack, body["read_only_token"]),
    )


async def _created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(stack: Stack) -> AsyncIterator[World]:
    assert stack.client is not None
    ann = await _user(stack, "ann@example.com", "member")
    bob = await _user(stack, "bob@example.com", "member")
    val = await _user(stack, "val@example.com", "viewer")
    mailbox_a = await _created(await ann.rw.post("/api/v1/mailboxes", json=mailbox_body()))
    mailbox_b = await _created(await bob.rw.post("/api/v1/mailboxes", json=mailbox_body()))
    campaign_a = await _created(
        await ann.rw.post("/api/v1/campaigns", json=campaign_body(mailbox_id=mailbox_a))
    )
    campaign_b = await _created(await bob.rw.post("/api/v1/campaigns", json=campaign_body()))
    for campaign in (campaign_a, campaign_b):
        owner = ann if campaign == campaign_a else bob
        added = await owner.rw.post(
            f"/api/v1/campaigns/{campaign}/recipients",
            json={"email": f"reader-{campaign[:8]}@example.org", "attributes": {"a": "1"}},
        )
        assert added.status_code == 201, added.text
    shared = await ann.rw.post(f"/api/v1/campaigns/{campaign_a}/shares", json={"email": val.email})
    assert shared.status_code == 204, shared.text
    shared = await ann.rw.post(f"/api/v1/mailboxes/{mailbox_a}/shares", json={"email": bob.email})
    assert shared.status_code == 204, shared.text
    suppressed = await ann.rw.post(
        "/api/v1/suppressions", json={"email": "gone@example.org", "mailbox_id": mailbox_a}
    )
    assert suppressed.status_code == 204, suppressed.text
    yield World(stack, stack.client, ann, bob, val, mailbox_a, mailbox_b, campaign_a, campaign_b)
    for user in (ann, bob, val):
        await user.rw.aclose()
        await user.ro.aclose()


async def _ids(client: httpx.AsyncClient, path: str) -> set[str]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["data"]}


async def test_lists_show_exactly_what_each_may_see(world: World) -> None:
    w = world
    assert await _ids(w.ann.rw, "/api/v1/campaigns") == {w.campaign_a}
    assert await _ids(w.bob.rw, "/api/v1/campaigns") == {w.campaign_b}
    assert await _ids(w.val.rw, "/api/v1/campaigns") == {w.campaign_a}
    assert {w.campaign_a, w.campaign_b} <= await _ids(w.admin, "/api/v1/campaigns")
    assert await _ids(w.ann.rw, "/api/v1/mailboxes") == {w.mailbox_a}
    # Shared for sending: in the list of usable mailboxes, not among those with settings.
    assert await _ids(w.bob.rw, "/api/v1/mailboxes") == {w.mailbox_b}
    assert await _ids(w.bob.rw, "/api/v1/mailboxes/usable") == {w.mailbox_a, w.mailbox_b}
    assert await _ids(w.val.rw, "/api/v1/mailboxes") == set()
    listed = await w.bob.rw.get("/api/v1/suppressions")
    assert listed.json()["count"] == 0
    assert (await w.ann.rw.get("/api/v1/suppressions")).json()["count"] == 1


async def test_every_read_of_someone_elses_campaign_is_404(world: World) -> None:
    w = world
    assert w.stack.client is not None
    spec = (await w.stack.client.get("/api/v1/openapi.json")).json()
    recipient = (await w.ann.rw.get(f"/api/v1/campaigns/{w.campaign_a}/recipients")).json()
    rid = recipient["data"][0]["id"]
    checked = 0
    for path, operations in spec["paths"].items():
        if "get" not in operations or "{campaign_id}" not in path:
            continue
        url = path.replace("{campaign_id}", w.campaign_a).replace("{recipient_id}", rid)
        assert (await w.ann.rw.get(url)).status_code == 200, url
        assert_error_shape(await w.bob.rw.get(url), 404)
        checked += 1
    assert checked >= 10
    for path in ("/api/v1/mailboxes/{id}", "/api/v1/mailboxes/{id}/sync"):
        url = path.format(id=w.mailbox_a)
        assert_error_shape(await w.val.rw.get(url), 404)
        assert_error_shape(await w.bob.rw.get(url), 403)  # shared for sending only


async def _event_count(stack: Stack) -> int:
    nc = await connect_nats(stack.settings.nats_url or "", name="test-count", attempts=3)
    try:
        return int((await nc.jetstream().stream_info("EVENTS")).state.messages)
    finally:
        await nc.close()


async def test_wrong_users_writes_are_refused_and_change_nothing(world: World) -> None:
    w = world
    before = await _event_count(w.stack)
    a = f"/api/v1/campaigns/{w.campaign_a}"
    attempts = [
        (w.bob.rw, "PATCH", a, {"name": "hijacked"}, 404),
        (w.bob.rw, "DELETE", a, None, 404),
        (w.bob.rw, "POST", f"{a}/recipients", {"email": "x@example.org"}, 404),
        (w.bob.rw, "POST", f"{a}/send", {}, 404),
        (w.bob.rw, "POST", f"{a}/shares", {"email": "bob@example.com"}, 404),
        (w.val.rw, "PATCH", a, {"name": "hijacked"}, 403),
        (w.val.rw, "DELETE", a, None, 403),
        (w.val.rw, "POST", f"{a}/send", {}, 403),
        (w.val.rw, "POST", f"{a}/dry-run", {}, 403),
        (w.val.rw, "POST", "/api/v1/campaigns", campaign_body(), 403),
        (w.val.rw, "POST", "/api/v1/mailboxes", mailbox_body(), 403),
        (w.bob.rw, "PATCH", f"/api/v1/mailboxes/{w.mailbox_a}", {"name": "x"}, 403),
        (w.bob.rw, "DELETE", f"/api/v1/mailboxes/{w.mailbox_a}", None, 403),
        (w.bob.rw, "POST", f"/api/v1/mailboxes/{w.mailbox_a}/sync", None, 403),
        (w.val.rw, "PATCH", f"/api/v1/mailboxes/{w.mailbox_b}", {"name": "x"}, 404),
        (w.bob.rw, "POST", "/api/v1/suppressions", {"email": "z@example.org"}, 403),
        (w.bob.rw, "POST", "/api/v1/users", {"email": "e@example.org", "password": PASSWORD}, 403),
        (
            w.val.rw,
            "POST",
            "/api/v1/campaigns",
            campaign_body(mailbox_id=w.mailbox_b),
            403,
        ),
    ]
    for client, method, url, body, status in attempts:
        response = await client.request(method, url, json=body)
        assert_error_shape(response, status)
    lift = await w.bob.rw.delete(
        "/api/v1/suppressions", params={"email": "gone@example.org", "mailbox_id": w.mailbox_a}
    )
    assert_error_shape(lift, 403)
    # A campaign may not send from a mailbox its author may not use.
    foreign = await w.ann.rw.post("/api/v1/campaigns", json=campaign_body(mailbox_id=w.mailbox_b))
    assert_error_shape(foreign, 422, mentions="mailbox_id")
    assert await _event_count(w.stack) == before
    row = (await w.ann.rw.get(a)).json()
    assert row["name"] == "Launch" and row["recipient_count"] == 1


async def test_a_shared_mailbox_can_be_picked_and_a_shared_campaign_read(world: World) -> None:
    w = world
    picked = await w.bob.rw.post(
        "/api/v1/campaigns", json=campaign_body(name="Bob's", mailbox_id=w.mailbox_a)
    )
    assert picked.status_code == 201, picked.text
    assert (await w.val.rw.get(f"/api/v1/campaigns/{w.campaign_a}/stats")).status_code == 200
    deleted = await w.bob.rw.delete(f"/api/v1/campaigns/{picked.json()['id']}")
    assert deleted.status_code == 204


async def test_a_read_only_token_is_refused_on_every_write_route(world: World) -> None:
    w = world
    assert w.stack.client is not None
    spec = (await w.stack.client.get("/api/v1/openapi.json")).json()
    recipient = (await w.ann.rw.get(f"/api/v1/campaigns/{w.campaign_a}/recipients")).json()
    ids = {
        "{campaign_id}": w.campaign_a,
        "{mailbox_id}": w.mailbox_a,
        "{recipient_id}": recipient["data"][0]["id"],
        "{user_id}": w.ann.id,
    }
    before = await _event_count(w.stack)
    checked = 0
    for path, operations in spec["paths"].items():
        for method in operations:
            if method == "get" or (method, path) == ("post", "/api/v1/auth/token"):
                continue
            url = path
            for name, value in ids.items():
                url = url.replace(name, value)
            for body in ({}, None):
                response = await w.ann.ro.request(method.upper(), url, json=body)
                assert_error_shape(response, 403)
                assert "read-only" in response.json()["error"]["message"], (method, url)
            checked += 1
    assert checked >= 25
    assert await _event_count(w.stack) == before
    # ...while reading works, and shows only the read-only token.
    mine = await w.ann.ro.get("/api/v1/users/me/tokens")
    assert mine.status_code == 200 and mine.json()["token"] is None


async def test_a_changed_smtp_host_does_not_take_the_password_along(world: World) -> None:
    """The exfiltration: point the SMTP side at another server, then test-send."""
    w = world
    with SmtpTestServer(username="ann", password=SMTP_PASSWORD) as theirs:
        moved = await w.ann.rw.patch(
            f"/api/v1/mailboxes/{w.mailbox_a}",
            json={"smtp": {"host": "127.0.0.1", "port": theirs.port, "security": "plain"}},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["smtp"]["password_set"] is False
        await w.ann.rw.post(
            f"/api/v1/campaigns/{w.campaign_a}/test-send", json={"email": "t@example.org"}
        )
        assert all(password != SMTP_PASSWORD for _, password in theirs.auth_attempts)
        # With a new password given in the same change, it is the new one that is used.
        moved = await w.ann.rw.patch(
            f"/api/v1/mailboxes/{w.mailbox_a}",
            json={"smtp": {"password": SMTP_PASSWORD}},
        )
        assert moved.json()["smtp"]["password_set"] is True
        sent = await w.ann.rw.post(
            f"/api/v1/campaigns/{w.campaign_a}/test-send", json={"email": "t@example.org"}
        )
        assert sent.status_code == 200, sent.text
        assert theirs.auth_attempts[-1] == ("ann", SMTP_PASSWORD)


async def test_a_changed_imap_host_does_not_take_the_password_along(world: World) -> None:
    """The other path: point the IMAP side elsewhere, then "sync now"."""
    w = world
    seen: list[bytes] = []

    async def listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
        await writer.drain()
        with_timeout = asyncio.timeout(10)
        async with with_timeout:
            while line := await reader.readline():
                seen.append(line)
                tag = line.split(b" ", 1)[0]
                writer.write(tag + b" NO refused\r\n")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(listener, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sync = w.stack.start_imap_sync()
    try:
        moved = await w.ann.rw.patch(
            f"/api/v1/mailboxes/{w.mailbox_a}",
            json={"imap": {"host": "127.0.0.1", "port": port, "security": "plain"}},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["imap"]["password_set"] is False
        await w.ann.rw.post(f"/api/v1/mailboxes/{w.mailbox_a}/sync", timeout=60)
    finally:
        await sync.stop()
        server.close()
        await server.wait_closed()
    assert b"imap-Pa55word" not in b"".join(seen)


async def test_a_rebuild_gives_the_same_owners_and_shares(world: World) -> None:
    w = world
    queries = {
        "mailboxes": "SELECT id, owner_id FROM mailboxes ORDER BY id",
        "campaigns": "SELECT id, owner_id FROM campaigns ORDER BY id",
        "mailbox_shares": "SELECT * FROM mailbox_shares ORDER BY 1, 2",
        "campaign_shares": "SELECT * FROM campaign_shares ORDER BY 1, 2",
    }
    conn = await connect(w.stack.settings.database_url or "")
    nc = await connect_nats(w.stack.settings.nats_url or "", name="test-rebuild", attempts=3)
    try:
        live: dict[str, Any] = {
            k: [tuple(r) for r in await conn.fetch(q)] for k, q in queries.items()
        }
        assert live["mailbox_shares"] and live["campaign_shares"]
        assert all(owner is not None for _, owner in live["campaigns"])
        await rebuild(conn, nc, nc.jetstream())
        again = {k: [tuple(r) for r in await conn.fetch(q)] for k, q in queries.items()}
    finally:
        await conn.close()
        await nc.close()
    assert again == live


async def test_unknown_ids_and_someone_elses_look_the_same(world: World) -> None:
    w = world
    for url in (f"/api/v1/campaigns/{NIL}", f"/api/v1/campaigns/{w.campaign_b}"):
        error = assert_error_shape(await w.ann.rw.get(url), 404)
        assert error["message"] == "campaign not found"
    _ = uuid
