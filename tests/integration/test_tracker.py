"""The tracker against real servers: a campaign really sent through the sender, then its
pixel, click and unsubscribe URLs (as read from the delivered mail) fetched over HTTP;
forged tokens; machine flagging; and 503, never 200, when JetStream cannot store."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from nats.js.errors import NotFoundError

from pigeon_common import db
from pigeon_common.events import RecipientUnsubscribed, decode_event
from pigeon_common.jetstream import (
    DEFAULT_PUBLISH_RETRY_SEC,
    EVENTS_STREAM,
    configure_publish_retry,
    connect_nats,
    provision,
)
from pigeon_common.render import TrackingSigner
from pigeon_common.validation import address_key
from pigeon_embedded.nats import NatsServer
from pigeon_embedded.ports import free_port
from pigeon_testing.dovecot import DovecotServer
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack, migrate, stack_settings
from pigeon_tracker.coalesce import ACTION_WINDOW_SEC
from pigeon_tracker.responses import PIXEL
from pigeon_tracker.service import Tracker
from pigeon_tracker.supervisor import Supervisor

from .sending_helpers import create_campaign, mailbox_for, parse, wait_status

OPENED = "pigeon.events.message.opened"
CLICKED = "pigeon.events.link.clicked"
UNSUBSCRIBED = "pigeon.events.recipient.unsubscribed"
RESUBSCRIBED = "pigeon.events.recipient.resubscribed"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)
TEMPLATE = """# Hello {{ recipient.name }}

[Read the news](https://example.com/news?id=1) or [the blog](https://example.com/blog).
"""
OTHER_TEMPLATE = "Only [one link](https://other.example.org/page) here.\n"
URL = re.compile(r"https?://[^\s\"'<>]+/campaigns/(?:o|t|unsub)/[A-Za-z0-9_/.-]+")
WAIT_SEC = 15.0


@dataclass
class Message:
    """One delivered message's tracking URLs (paths only) and ids."""

    email: str
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    pixel: str
    clicks: dict[int, str]
    unsubscribe: str


@dataclass
class Sent:
    """Two campaigns really sent: `a` with four recipients, `b` with one."""

    a: list[Message]
    b: list[Message]
    mailbox_a: uuid.UUID
    urls_a: dict[int, str] = field(default_factory=dict)


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _messages(raw: list[bytes], signer: TrackingSigner) -> list[Message]:
    found = []
    for data in raw:
        mail = parse(data)
        html = mail.get_body(preferencelist=("html",)).get_content()
        paths = [_path(u) for u in URL.findall(html)]
        pixel = next(p for p in paths if p.startswith("/campaigns/o/"))
        ids = signer.read_message_token(pixel.split("/")[3])
        assert ids is not None
        clicks = {}
        for p in paths:
            if p.startswith("/campaigns/t/"):
                index = signer.read_link_token(*ids, p.split("/")[5])
                assert index is not None
                clicks[index] = p
        unsubscribe = _path(mail["List-Unsubscribe"].strip("<>"))
        found.append(Message(mail["To"].addresses[0].addr_spec, *ids, pixel, clicks, unsubscribe))
    return sorted(found, key=lambda m: m.email)


async def _send(stack: Stack, smtp: SmtpTestServer, account: Any, template: str, emails: list[str]):
    client = stack.client
    assert client is not None
    recipients = [{"email": e, "name": e.split("@")[0], "attributes": {}} for e in emails]
    mailbox = mailbox_for(smtp, account, append_to_sent="never")
    campaign_id = await create_campaign(client, mailbox, recipients, template=template)
    started = await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    assert started.status_code == 202, started.text
    await wait_status(client, campaign_id, {"done"})
    campaign = (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()
    return campaign_id, uuid.UUID(campaign["mailbox_id"])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sent(
    sending_stack: Stack, smtp_server: SmtpTestServer, dovecot: DovecotServer
) -> AsyncIterator[Sent]:
    smtp_server.clear()
    account = dovecot.add_user(f"tracker-{uuid.uuid4().hex[:8]}", "secret-pw")
    sender = sending_stack.start_sender()
    try:
        a_emails = [f"reader{i}@example.org" for i in range(4)]
        campaign_a, mailbox_a = await _send(sending_stack, smtp_server, account, TEMPLATE, a_emails)
        b_emails = ["other@example.net"]
        campaign_b, _ = await _send(sending_stack, smtp_server, account, OTHER_TEMPLATE, b_emails)
    finally:
        await sender.stop()
    signer = TrackingSigner(sending_stack.settings.keys())
    messages = _messages([m.data for m in smtp_server.messages], signer)
    a = [m for m in messages if str(m.campaign_id) == campaign_a]
    b = [m for m in messages if str(m.campaign_id) == campaign_b]
    assert [m.email for m in a] == a_emails and [m.email for m in b] == b_emails
    assert all(len(m.clicks) == 2 for m in a) and all(len(m.clicks) == 1 for m in b)
    yield Sent(a=a, b=b, mailbox_a=mailbox_a)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tracker(sending_stack: Stack) -> AsyncIterator[Tracker]:
    async with Tracker(sending_stack.settings) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def http(tracker: Tracker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=tracker.url, timeout=10) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def conn(sending_stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    assert sending_stack.settings.database_url is not None
    connection = await db.connect(sending_stack.settings.database_url)
    try:
        yield connection
    finally:
        await connection.close()


class StreamProbe:
    """Reads the EVENTS stream directly: what is stored, not what was projected."""

    def __init__(self, js: Any) -> None:
        self.js = js

    async def count(self, subject: str) -> int:
        info = await self.js.stream_info(EVENTS_STREAM, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))

    async def last_seq(self) -> int:
        return int((await self.js.stream_info(EVENTS_STREAM)).state.last_seq)

    async def last(self, subject: str, message: Message) -> Any:
        """The newest event of `subject` about this message."""
        found = None
        seq = 1
        while True:
            try:
                stored = await self.js.get_msg(EVENTS_STREAM, seq=seq, subject=subject, next=True)
            except NotFoundError:
                return found
            _, event = decode_event(stored.data)
            if getattr(event, "recipient_id", None) == message.recipient_id:
                found = event
            seq = stored.seq + 1


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stream(sending_stack: Stack) -> AsyncIterator[StreamProbe]:
    assert sending_stack.settings.nats_url is not None
    nc = await connect_nats(sending_stack.settings.nats_url, name="test-tracker", attempts=3)
    try:
        yield StreamProbe(nc.jetstream())
    finally:
        await nc.close()


async def _eventually(probe: Callable[[], Awaitable[Any]], expected: Any) -> None:
    deadline = time.monotonic() + WAIT_SEC
    value = None
    while time.monotonic() < deadline:
        value = await probe()
        if value == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {expected!r}, last {value!r}")


# --- open pixel ---------------------------------------------------------------------------------


async def test_open_stores_the_event_and_answers_the_gif(
    sent: Sent, http: httpx.AsyncClient, conn: asyncpg.Connection, stream: StreamProbe
) -> None:
    message = sent.a[0]
    before = await stream.count(OPENED)
    first = await http.get(message.pixel, headers={"User-Agent": BROWSER})
    assert first.status_code == 200
    assert first.content == PIXEL and len(first.content) == 43
    assert first.headers["content-type"] == "image/gif"
    assert first.headers["cache-control"] == (
        "no-store, no-cache, must-revalidate, private, max-age=0"
    )
    assert first.headers["pragma"] == "no-cache"
    assert first.headers["expires"] == "0"
    assert "set-cookie" not in first.headers
    # Stored before the answer: the stream holds it now, not eventually.
    assert await stream.count(OPENED) == before + 1
    second = await http.get(message.pixel, headers={"User-Agent": BROWSER})
    assert second.status_code == 200
    assert await stream.count(OPENED) == before + 2

    async def opens() -> tuple[int, int]:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT recipient_id) AS people FROM open_events"
            " WHERE campaign_id = $1",
            message.campaign_id,
        )
        return row["n"], row["people"]

    await _eventually(opens, (2, 1))
    rows = await conn.fetch(
        "SELECT machine, machine_reason, user_agent FROM open_events WHERE recipient_id = $1",
        message.recipient_id,
    )
    assert {(r["machine"], r["machine_reason"], r["user_agent"]) for r in rows} == {
        (False, "", BROWSER)
    }


async def test_image_proxy_and_apple_opens_are_flagged_as_machine(
    sent: Sent, http: httpx.AsyncClient, conn: asyncpg.Connection, sending_stack: Stack
) -> None:
    message = sent.a[1]
    assert (await http.get(message.pixel, headers={"User-Agent": GMAIL_PROXY})).status_code == 200
    assert (await http.get(message.pixel, headers={"User-Agent": "Mozilla/5.0"})).status_code == 200
    # Behind one trusted proxy, the client address comes from X-Forwarded-For: Apple's 17/8.
    behind_cdn = sending_stack.settings.model_copy(update={"tracker_trusted_proxies": 1})
    async with (
        Tracker(behind_cdn) as proxied,
        httpx.AsyncClient(base_url=proxied.url, timeout=10) as client,
    ):
        got = await client.get(
            message.pixel, headers={"User-Agent": BROWSER, "X-Forwarded-For": "17.58.1.2"}
        )
        assert got.status_code == 200
        forged = await client.get(
            message.pixel,
            headers={"User-Agent": BROWSER, "X-Forwarded-For": "17.0.0.1, 198.51.100.7"},
        )
        assert forged.status_code == 200

    async def reasons() -> list[tuple[bool, str]]:
        rows = await conn.fetch(
            "SELECT machine, machine_reason FROM open_events WHERE recipient_id = $1 ORDER BY at",
            message.recipient_id,
        )
        return [(r["machine"], r["machine_reason"]) for r in rows]

    await _eventually(
        reasons, [(True, "proxy"), (True, "apple_mpp"), (True, "apple_mpp"), (False, "")]
    )
    await _eventually(
        lambda: conn.fetchval(
            "SELECT user_agent FROM open_events WHERE recipient_id = $1 AND machine_reason = "
            "'proxy'",
            message.recipient_id,
        ),
        GMAIL_PROXY,
    )


# --- click redirect -------------------------------------------------------------------------------


async def test_click_redirects_to_the_registered_url_whatever_the_query(
    sent: Sent, http: httpx.AsyncClient, conn: asyncpg.Connection, stream: StreamProbe
) -> None:
    message = sent.a[0]
    registered = {
        r["link_index"]: r["url"]
        for r in await conn.fetch(
            "SELECT link_index, url FROM campaign_links WHERE campaign_id = $1",
            message.campaign_id,
        )
    }
    assert sorted(registered.values()) == [
        "https://example.com/blog",
        "https://example.com/news?id=1",
    ]
    assert sorted(message.clicks) == sorted(registered)
    before = await stream.count(CLICKED)
    for index, path in message.clicks.items():
        for suffix in ("", "?url=https://evil.example", "?next=https://evil.example/x", "?id=2"):
            answer = await http.get(path + suffix, headers={"User-Agent": BROWSER})
            assert answer.status_code == 302, answer.text
            assert answer.headers["location"] == registered[index]
            assert "no-store" in answer.headers["cache-control"]
    assert await stream.count(CLICKED) == before + 4 * len(message.clicks)

    async def clicks() -> int:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM link_clicks WHERE recipient_id = $1 AND NOT machine"
                " AND url = ANY($2::text[])",
                message.recipient_id,
                list(registered.values()),
            )
        )

    await _eventually(clicks, 4 * len(message.clicks))


async def test_head_click_redirects_and_is_flagged(
    sent: Sent, http: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    message = sent.a[2]
    path = message.clicks[0]
    answer = await http.head(path, headers={"User-Agent": BROWSER})
    assert answer.status_code == 302
    scanner = await http.get(path, headers={"User-Agent": "Mimecast Security Scanner"})
    assert scanner.status_code == 302

    async def reasons() -> set[str]:
        rows = await conn.fetch(
            "SELECT machine_reason FROM link_clicks WHERE recipient_id = $1 AND machine",
            message.recipient_id,
        )
        return {r["machine_reason"] for r in rows}

    await _eventually(reasons, {"head", "scanner"})


async def test_forged_and_foreign_tokens_get_404_and_record_nothing(
    sent: Sent, http: httpx.AsyncClient, stream: StreamProbe
) -> None:
    mine, neighbour, foreign = sent.a[0], sent.a[1], sent.b[0]
    message_token = mine.pixel.split("/")[3]
    link_token = mine.clicks[0].split("/")[5]
    bad = [
        # a link token of another recipient's message, and of another campaign's message
        f"/campaigns/t/{message_token}/r/{neighbour.clicks[0].split('/')[5]}/",
        f"/campaigns/t/{message_token}/r/{foreign.clicks[0].split('/')[5]}/",
        f"/campaigns/t/{foreign.pixel.split('/')[3]}/r/{link_token}/",
        # forged, truncated, padded, wrong kind
        f"/campaigns/o/{_flip(message_token)}/p.png",
        f"/campaigns/o/{message_token[:-1]}/p.png",
        f"/campaigns/o/{message_token}A/p.png",
        f"/campaigns/t/{message_token}/r/{_flip(link_token)}/",
        f"/campaigns/t/{message_token}/r/{link_token[:-2]}/",
        f"/campaigns/o/{mine.unsubscribe.split('/')[3]}/p.png",
        f"/campaigns/unsub/{message_token}/",
        f"/campaigns/t/{mine.unsubscribe.split('/')[3]}/r/{link_token}/",
        "/campaigns/o/x/p.png",
        "/campaigns/t/a/r/b/",
        "/campaigns/unsub/1/",
        "/nothing-here",
        "/campaigns/o/",
    ]
    before = [await stream.count(s) for s in (OPENED, CLICKED, UNSUBSCRIBED)]
    for path in bad:
        answer = await http.get(path)
        assert answer.status_code == 404, path
        assert "location" not in answer.headers
    forged_unsub = f"/campaigns/unsub/{_flip(mine.unsubscribe.split('/')[3])}/"
    posted = await http.post(forged_unsub, data={"List-Unsubscribe": "One-Click"})
    assert posted.status_code == 404
    assert [await stream.count(s) for s in (OPENED, CLICKED, UNSUBSCRIBED)] == before
    assert (await http.put(mine.pixel)).status_code == 405
    assert (await http.post(mine.clicks[0])).status_code == 405
    assert (await http.delete(mine.unsubscribe)).status_code == 405


async def test_a_genuine_token_for_a_link_never_registered_gets_404(
    sending_stack: Stack, sent: Sent, http: httpx.AsyncClient, stream: StreamProbe
) -> None:
    """Signed and valid, but campaign `a` registered links 0 and 1 only: no destination to
    invent (no open redirect), nothing recorded."""
    mine = sent.a[0]
    signer = TrackingSigner(sending_stack.settings.keys())
    unregistered = signer.link_token(mine.campaign_id, mine.recipient_id, 7)
    before = await stream.count(CLICKED)
    for method in ("GET", "HEAD"):
        answer = await http.request(
            method, f"{mine.pixel.split('/p.png')[0].replace('/o/', '/t/')}/r/{unregistered}/"
        )
        assert answer.status_code == 404 and "location" not in answer.headers
    assert await stream.count(CLICKED) == before


async def _read_models_of_one_message(
    database_url: str, campaign: uuid.UUID, recipient: uuid.UUID
) -> None:
    """The rows the tracker reads for one message (as the projector would have written
    them): its campaign, its recipient and one registered link."""
    conn = await db.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO campaigns (id, name, subject, template_markdown, status, created_at,"
            " updated_at, last_seq) VALUES ($1, 'c', 's', 't', 'sending', now(), now(), 1)",
            campaign,
        )
        await conn.execute(
            "INSERT INTO recipients (campaign_id, id, email, name, attributes, created_at,"
            " updated_at) VALUES ($1, $2, 'ann@example.org', '', '{}', now(), now())",
            campaign,
            recipient,
        )
        await conn.execute(
            "INSERT INTO campaign_links (campaign_id, link_index, url)"
            " VALUES ($1, 0, 'https://example.org/')",
            campaign,
        )
    finally:
        await conn.close()


def _flip(token: str) -> str:
    """The token with one character changed (same length and alphabet)."""
    middle = len(token) // 2
    return token[:middle] + ("B" if token[middle] != "B" else "C") + token[middle + 1 :]


# --- unsubscribe --------------------------------------------------------------------------------


async def _suppression(conn: asyncpg.Connection, email: str, mailbox: uuid.UUID) -> str | None:
    value = await conn.fetchval(
        "SELECT reason FROM suppressions WHERE email_key = $1 AND mailbox_key = $2",
        address_key(email),
        mailbox,
    )
    return str(value) if value is not None else None


async def test_get_and_head_show_a_page_and_change_nothing(
    sent: Sent, http: httpx.AsyncClient, conn: asyncpg.Connection, stream: StreamProbe
) -> None:
    message = sent.a[3]
    before = await stream.count(UNSUBSCRIBED)
    page = await http.get(message.unsubscribe)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert "noindex" in page.headers["x-robots-tag"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "script" not in page.text.lower()
    assert message.email in page.text
    assert 'method="post"' in page.text
    head = await http.head(message.unsubscribe)
    assert head.status_code == 200 and head.content == b""
    # What a link scanner does: follow everything, also with query strings.
    assert (await http.get(message.unsubscribe + "?confirm=1")).status_code == 200
    await asyncio.sleep(0.5)
    assert await stream.count(UNSUBSCRIBED) == before
    assert await _suppression(conn, message.email, sent.mailbox_a) is None


async def test_one_click_post_unsubscribes_once(
    sent: Sent, http: httpx.AsyncClient, conn: asyncpg.Connection, stream: StreamProbe
) -> None:
    message = sent.a[1]
    before = await stream.count(UNSUBSCRIBED)
    answer = await http.post(message.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200, answer.text
    assert "location" not in answer.headers and "set-cookie" not in answer.headers
    assert "You are unsubscribed" in answer.text and "resubscribe" in answer.text
    assert await stream.count(UNSUBSCRIBED) == before + 1
    await _eventually(lambda: _suppression(conn, message.email, sent.mailbox_a), "unsubscribed")
    first = await _unsubscribe_rows(conn, message, sent.mailbox_a)
    # Again, and again right away: answered the same, stored once (one id per minute).
    for _ in range(2):
        again = await http.post(message.unsubscribe, data={"List-Unsubscribe": "One-Click"})
        assert again.status_code == 200 and "You are unsubscribed" in again.text
    assert await stream.count(UNSUBSCRIBED) == before + 1
    await _eventually(lambda: _projected_all(conn, stream), True)
    assert await _unsubscribe_rows(conn, message, sent.mailbox_a) == first
    event = await stream.last(UNSUBSCRIBED, message)
    assert isinstance(event, RecipientUnsubscribed)
    assert (event.method, event.email, event.mailbox_id) == (
        "one_click",
        message.email,
        sent.mailbox_a,
    )
    page = await http.get(message.unsubscribe)
    assert "already unsubscribed" in page.text

    # Re-subscribe from the page: the suppression goes; repeating it changes nothing more.
    resubscribed = await stream.count(RESUBSCRIBED)
    back = await http.post(message.unsubscribe, data={"action": "resubscribe"})
    assert back.status_code == 200 and "subscribed again" in back.text
    assert await stream.count(RESUBSCRIBED) == resubscribed + 1
    await _eventually(lambda: _suppression(conn, message.email, sent.mailbox_a), None)
    assert (await http.post(message.unsubscribe, data={"action": "resubscribe"})).status_code == 200
    await _eventually(lambda: _projected_all(conn, stream), True)
    assert await _suppression(conn, message.email, sent.mailbox_a) is None

    # Unsubscribing again right after (the same minute's id is taken, but the re-subscribe
    # undid that event) is stored, under a chained id.
    again = await http.post(message.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    await _eventually(lambda: _suppression(conn, message.email, sent.mailbox_a), "unsubscribed")
    assert await stream.count(UNSUBSCRIBED) == before + 2


async def _unsubscribe_rows(
    conn: asyncpg.Connection, message: Message, mailbox: uuid.UUID
) -> list[Any]:
    rows = await conn.fetch(
        "SELECT s.reason, s.created_at, u.unsubscribed_at FROM suppressions s"
        " JOIN unsubscribes u ON u.campaign_id = $3 AND u.recipient_id = $4"
        " WHERE s.email_key = $1 AND s.mailbox_key = $2",
        address_key(message.email),
        mailbox,
        message.campaign_id,
        message.recipient_id,
    )
    return [tuple(r) for r in rows]


async def _projected_all(conn: asyncpg.Connection, stream: StreamProbe) -> bool:
    done = await conn.fetchval(
        "SELECT last_seq FROM projection_checkpoints WHERE projection = 'read_models'"
    )
    return bool(done is not None and done >= await stream.last_seq())


async def test_one_click_multipart_and_the_page_button(
    sent: Sent, http: httpx.AsyncClient, conn: asyncpg.Connection, stream: StreamProbe
) -> None:
    multipart, button = sent.a[2], sent.a[0]
    before = await stream.count(UNSUBSCRIBED)
    boundary = "----pigeon" + uuid.uuid4().hex
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    answer = await http.post(
        multipart.unsubscribe,
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status_code == 200, answer.text
    await _eventually(lambda: _suppression(conn, multipart.email, sent.mailbox_a), "unsubscribed")
    event = await stream.last(UNSUBSCRIBED, multipart)
    assert isinstance(event, RecipientUnsubscribed) and event.method == "one_click"

    pressed = await http.post(button.unsubscribe, data={"action": "unsubscribe"})
    assert pressed.status_code == 200
    await _eventually(lambda: _suppression(conn, button.email, sent.mailbox_a), "unsubscribed")
    event = await stream.last(UNSUBSCRIBED, button)
    assert isinstance(event, RecipientUnsubscribed) and event.method == "page"
    assert await stream.count(UNSUBSCRIBED) == before + 2

    too_big = await http.post(button.unsubscribe, content=b"x" * (17 * 1024))
    assert too_big.status_code == 413


# --- JetStream cannot store ---------------------------------------------------------------------


async def test_503_when_jetstream_cannot_store_and_nothing_stored_later(
    tmp_path: Path, fresh_database: str
) -> None:
    nats = NatsServer(tmp_path / "nats", port=free_port())
    nats.start()
    try:
        await migrate(fresh_database)
        # Refused publishes are retried for this long (a leader election), then 503.
        retry_sec = 1.0
        settings = stack_settings(
            fresh_database, nats.url, tmp_path / "data", publish_retry_sec=retry_sec
        )
        signer = TrackingSigner(settings.keys())
        campaign, recipient = uuid.uuid4(), uuid.uuid4()
        await _read_models_of_one_message(fresh_database, campaign, recipient)
        message = signer.message_token(campaign, recipient)
        pixel = f"/campaigns/o/{message}/p.png"
        click = f"/campaigns/t/{message}/r/{signer.link_token(campaign, recipient, 0)}/"
        unsubscribe = f"/campaigns/unsub/{signer.unsubscribe_token(campaign, recipient)}/"
        async with (
            Tracker(settings) as tracker,
            httpx.AsyncClient(base_url=tracker.url, timeout=10) as http,
        ):
            ok = 0
            for _ in range(5):
                assert (await http.get(pixel)).status_code == 200
                ok += 1
            assert (await http.get(click)).status_code == 302  # the link is cached now

            nats.stop()
            for answer in (
                await http.get(click),
                await http.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}),
            ):
                assert answer.status_code == 503 and "location" not in answer.headers
            statuses = []
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                answer = await http.get(pixel)
                statuses.append(answer.status_code)
                if answer.status_code == 503:
                    assert answer.headers["retry-after"]
            assert set(statuses) == {503}, statuses
            assert (await http.get("/readyz")).status_code == 503

            nats.start()
            deadline = time.monotonic() + 20
            while (await http.get(pixel)).status_code != 200:
                assert time.monotonic() < deadline, "tracker did not recover"
                await asyncio.sleep(0.1)
            ok += 1
            for _ in range(3):
                assert (await http.get(pixel)).status_code == 200
                ok += 1
            assert (await http.get("/readyz")).status_code == 200

            nc = await connect_nats(nats.url, name="test", attempts=3)
            try:
                js = nc.jetstream()
                await asyncio.sleep(1)  # anything held back would arrive now
                info = await js.stream_info(EVENTS_STREAM, subjects_filter=OPENED)
                assert (info.state.subjects or {}).get(OPENED, 0) == ok
                # Only the click answered 302 was stored; the 503s left nothing behind.
                info = await js.stream_info(EVENTS_STREAM)
                assert info.state.messages == ok + 1

                # The stream itself gone: no responder (as while a leader is elected),
                # retried for the window, then 503, nothing kept.
                await js.delete_stream(EVENTS_STREAM)
                started = time.monotonic()
                assert (await http.get(pixel)).status_code == 503
                assert retry_sec * 0.5 < time.monotonic() - started < retry_sec + 1.5
                await provision(js)
                assert (await http.get(pixel)).status_code == 200
                info = await js.stream_info(EVENTS_STREAM)
                assert info.state.messages == 1
            finally:
                await nc.close()
    finally:
        configure_publish_retry(DEFAULT_PUBLISH_RETRY_SEC)
        nats.stop()


async def test_503_when_the_ack_does_not_come(tmp_path: Path, fresh_database: str) -> None:
    """A stalled server (stopped, not gone): the ack never comes, the answer is 503 after
    the ack timeout, never a hang and never 200."""
    nats = NatsServer(tmp_path / "nats", port=free_port())
    nats.start()
    try:
        await migrate(fresh_database)
        # Every fetch is recorded (none coalesced as a flood): each one must answer 503.
        settings = stack_settings(
            fresh_database, nats.url, tmp_path / "data", tracker_events_per_minute=0
        )
        signer = TrackingSigner(settings.keys())
        pixel = f"/campaigns/o/{signer.message_token(uuid.uuid4(), uuid.uuid4())}/p.png"
        async with (
            Tracker(settings) as tracker,
            httpx.AsyncClient(base_url=tracker.url, timeout=10) as http,
        ):
            assert (await http.get(pixel)).status_code == 200
            assert nats.pid is not None
            os.kill(nats.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                answers = await asyncio.gather(*(http.get(pixel) for _ in range(10)))
                elapsed = time.monotonic() - started
            finally:
                os.kill(nats.pid, signal.SIGCONT)
            assert {a.status_code for a in answers} == {503}
            assert 1.5 < elapsed < 6
            deadline = time.monotonic() + 10
            while (await http.get(pixel)).status_code != 200:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
    finally:
        nats.stop()


async def test_worker_processes_share_one_port_and_are_restarted(
    tmp_path: Path, fresh_database: str
) -> None:
    """Production's way: worker processes on one port, each with its own NATS connection;
    a worker that dies is replaced; stopping stops them all."""
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    stop = asyncio.Event()
    try:
        await migrate(fresh_database)
        settings = stack_settings(
            fresh_database,
            nats.url,
            tmp_path / "data",
            tracker_port=free_port(),
            tracker_workers=2,
            tracker_events_per_minute=0,  # every one of the 41 opens of one pixel is stored
        )
        signer = TrackingSigner(settings.keys())
        pixel = f"/campaigns/o/{signer.message_token(uuid.uuid4(), uuid.uuid4())}/p.png"
        supervisor = Supervisor(settings)
        task = asyncio.create_task(supervisor.run(stop))
        base = f"http://127.0.0.1:{settings.tracker_port}"
        await _eventually(lambda: _tracker_connections(nats), 2)
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            await _eventually(lambda: _status(http, "/readyz"), 200)
            ok = 0
            for _ in range(40):  # a new connection each: the kernel spreads them
                async with httpx.AsyncClient(base_url=base, timeout=10) as fresh:
                    assert (await fresh.get(pixel)).status_code == 200
                    ok += 1
            first = supervisor.pids
            assert len(first) == 2
            os.kill(first[0], signal.SIGKILL)
            await _eventually(lambda: _restarted(supervisor, first), True)
            await _eventually(lambda: _tracker_connections(nats), 2)
            await _eventually(lambda: _status(http, pixel), 200)
            ok += 1
        nc = await connect_nats(nats.url, name="test", attempts=3)
        try:
            info = await nc.jetstream().stream_info(EVENTS_STREAM, subjects_filter=OPENED)
            assert (info.state.subjects or {}).get(OPENED, 0) == ok
        finally:
            await nc.close()
        pids = supervisor.pids
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        assert all(_gone(pid) for pid in pids)
    finally:
        stop.set()
        nats.stop()


async def _status(http: httpx.AsyncClient, path: str) -> int:
    try:
        return (await http.get(path)).status_code
    except httpx.HTTPError:
        return 0


async def _restarted(supervisor: Supervisor, before: list[int]) -> bool:
    now = supervisor.pids
    return len(now) == 2 and now[0] != before[0] and now[1] == before[1]


async def _tracker_connections(nats: NatsServer) -> int:
    """Clients named pigeon-tracker connected to this server (its monitoring endpoint)."""
    async with httpx.AsyncClient(timeout=5) as client:
        connz = (await client.get(f"http://127.0.0.1:{nats.monitor_port}/connz")).json()
    return sum(1 for c in connz.get("connections") or [] if c.get("name") == "pigeon-tracker")


def _gone(pid: int) -> bool:
    """True when the process has exited (reaped, or a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


# --- floods from public URLs --------------------------------------------------------------------

FLOOD_POSTS = 10_000
FLOOD_FETCHES = 2_000
FLOOD_CONCURRENCY = 32
FLOOD_TIMEOUT_SEC = 240.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def two_workers(sending_stack: Stack) -> AsyncIterator[str]:
    """The tracker as production runs it (two worker processes on one port); its URL."""
    settings = sending_stack.settings.model_copy(
        update={"tracker_port": free_port(), "tracker_workers": 2}
    )
    supervisor = Supervisor(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    base = f"http://127.0.0.1:{settings.tracker_port}"
    try:

        async def every_worker_ready() -> bool:
            for _ in range(20):  # fresh connections: the kernel spreads them over both
                async with httpx.AsyncClient(base_url=base, timeout=5) as fresh:
                    if await _status(fresh, "/readyz") != 200:
                        return False
            return True

        await _eventually(every_worker_ready, True)
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def _flood(
    base: str, count: int, request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
) -> list[int]:
    """`count` requests from FLOOD_CONCURRENCY concurrent loops; the status codes."""
    statuses: list[int] = []
    left = [count]
    limits = httpx.Limits(max_connections=FLOOD_CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def loop() -> None:
            while left[0] > 0:
                left[0] -= 1  # claimed before awaiting: exactly `count` requests in all
                statuses.append((await request(client)).status_code)

        await asyncio.wait_for(
            asyncio.gather(*(loop() for _ in range(FLOOD_CONCURRENCY))), FLOOD_TIMEOUT_SEC
        )
    return statuses


async def _events_of(stream: StreamProbe, subject: str, message: Message, since: int) -> list[Any]:
    found = []
    seq = since + 1
    while True:
        try:
            stored = await stream.js.get_msg(EVENTS_STREAM, seq=seq, subject=subject, next=True)
        except NotFoundError:
            return found
        _, event = decode_event(stored.data)
        if getattr(event, "recipient_id", None) == message.recipient_id:
            found.append(event)
        seq = stored.seq + 1


async def test_ten_thousand_one_click_posts_store_a_handful_of_events(
    sent: Sent, two_workers: str, conn: asyncpg.Connection, stream: StreamProbe
) -> None:
    message = sent.a[3]
    since = await stream.last_seq()
    started = time.time()
    statuses = await _flood(
        two_workers,
        FLOOD_POSTS,
        lambda client: client.post(message.unsubscribe, data={"List-Unsubscribe": "One-Click"}),
    )
    windows = int(time.time() // ACTION_WINDOW_SEC) - int(started // ACTION_WINDOW_SEC) + 1
    assert len(statuses) == FLOOD_POSTS and set(statuses) == {200}
    stored = await _events_of(stream, UNSUBSCRIBED, message, since)
    # One per minute window (a slow run spans two or three).
    assert 1 <= len(stored) <= windows, (len(stored), windows)
    assert all(isinstance(e, RecipientUnsubscribed) and e.method == "one_click" for e in stored)
    await _eventually(lambda: _suppression(conn, message.email, sent.mailbox_a), "unsubscribed")
    await _eventually(lambda: _projected_all(conn, stream), True)
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM unsubscribes WHERE campaign_id = $1 AND recipient_id = $2",
            message.campaign_id,
            message.recipient_id,
        )
        == 1
    )


async def test_pixel_and_click_floods_store_bounded_events_and_are_all_answered(
    sent: Sent, two_workers: str, sending_stack: Stack, stream: StreamProbe
) -> None:
    message = sent.b[0]
    click = message.clicks[0]
    since = await stream.last_seq()
    pixels = await _flood(two_workers, FLOOD_FETCHES, lambda client: client.get(message.pixel))
    clicks = await _flood(two_workers, FLOOD_FETCHES // 4, lambda client: client.get(click))
    assert pixels == [200] * FLOOD_FETCHES
    assert clicks == [302] * (FLOOD_FETCHES // 4)
    # At most `limit` a minute from each of the two workers; the flood may straddle a
    # minute boundary.
    limit = sending_stack.settings.tracker_events_per_minute
    bound = 2 * 2 * limit
    opened = await _events_of(stream, OPENED, message, since)
    clicked = await _events_of(stream, CLICKED, message, since)
    assert limit <= len(opened) <= bound, len(opened)
    assert limit <= len(clicked) <= bound, len(clicked)
