"""The tracker's ASGI app: open pixel, click redirect, unsubscribe pages, health.

A raw ASGI callable, no framework: the pixel and the redirect are answered from prebuilt
messages after one HMAC check, one in-memory lookup and one JetStream publish. Every
recorded fact is stored before the answer goes out; when it cannot be, the answer is 503.
A token that does not verify (forged, truncated, of another kind or another message)
gets 404 and records nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from pigeon_common import metrics as exposition
from pigeon_common.events import MachineReason
from pigeon_common.health import health_app
from pigeon_common.render import TrackingSigner
from pigeon_common.runtime import Connections, Readiness, check_live
from pigeon_tracker import metrics, responses
from pigeon_tracker.agents import Agent, client_ip, machine_reason, read_agent
from pigeon_tracker.coalesce import FloodGate
from pigeon_tracker.envelopes import (
    CLICKED_SUBJECT,
    OPENED_SUBJECT,
    clicked_json,
    new_event_id,
    opened_json,
    utc_now,
)
from pigeon_tracker.forms import MAX_FORM_BYTES, FormTooLargeError, read_unsubscribe_post
from pigeon_tracker.links import LinkCache
from pigeon_tracker.pages import PAGE_HEADERS, render_page
from pigeon_tracker.publisher import EventPublisher, NotStoredError
from pigeon_tracker.responses import Send
from pigeon_tracker.settings import TrackerSettings
from pigeon_tracker.unsubscribe import SQL, Answer, Unsubscriber

log = logging.getLogger(__name__)

OPEN_PREFIX = "/campaigns/o/"
CLICK_PREFIX = "/campaigns/t/"
UNSUBSCRIBE_PREFIX = "/campaigns/unsub/"
PIXEL_SUFFIX = "/p.png"
GET_HEAD = b"GET, HEAD"
GET_HEAD_POST = b"GET, HEAD, POST"
WARN_EVERY_SEC = 10.0
HEALTH_PATHS = ("/healthz", "/readyz")

# What asyncpg raises when PostgreSQL is away or the pool cannot hand out a connection.
DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

Scope = dict[str, Any]
Receive = Any


@dataclass
class Deps:
    """What the routes need once the servers are reached."""

    conns: Connections
    publisher: EventPublisher
    links: LinkCache
    unsubscriber: Unsubscriber


async def deps_for(conns: Connections) -> Deps:
    """The routes' dependencies on open connections (the publisher is started)."""
    publisher = EventPublisher(conns.nc)
    await publisher.start()

    async def load_links(campaign_id: uuid.UUID) -> list[tuple[int, str]]:
        async with conns.pool.acquire() as conn:
            rows = await conn.fetch(SQL.campaign_links, campaign_id)
        return [(row["link_index"], row["url"]) for row in rows]

    return Deps(conns, publisher, LinkCache(load_links), Unsubscriber(conns.pool, publisher))


class TrackerApp:
    """The ASGI app; it answers 503 on tracking routes until `attach()` gives it servers."""

    def __init__(self, settings: TrackerSettings) -> None:
        self.readiness = Readiness()
        self._signer = TrackingSigner(settings.keys())
        self._trusted_proxies = settings.tracker_trusted_proxies
        self._gate = FloodGate(settings.tracker_events_per_minute)
        self._deps: Deps | None = None
        self._warned_at = 0.0
        self._health = health_app(self._check)  # /healthz, /readyz and the lifespan
        self._requests = metrics.RequestCounts()

    def attach(self, deps: Deps) -> None:
        self._deps = deps
        self.readiness.reason = None

    def detach(self) -> None:
        self._deps = None
        self.readiness.reason = "stopping"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._route(scope, receive, send)
        else:
            await self._health(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        status = 0  # the answer's, once it starts; counted with the route at the end

        async def answer(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        route = metrics.OTHER
        try:
            if path.startswith(OPEN_PREFIX):
                route = metrics.OPEN
                await self._open(scope, answer, path[len(OPEN_PREFIX) :])
            elif path.startswith(CLICK_PREFIX):
                route = metrics.CLICK
                await self._click(scope, answer, path[len(CLICK_PREFIX) :])
            elif path.startswith(UNSUBSCRIBE_PREFIX):
                route = metrics.UNSUBSCRIBE
                await self._unsubscribe(scope, receive, answer, path[len(UNSUBSCRIBE_PREFIX) :])
            elif path in HEALTH_PATHS:
                route = metrics.HEALTH
                await self._health(scope, receive, answer)
            elif path == exposition.METRICS_PATH:
                route = metrics.METRICS
                await exposition.respond_asgi(answer, head=scope["method"] == "HEAD")
            else:
                await responses.not_found(answer, head=scope["method"] == "HEAD")
        except BaseException:
            status = status or 500  # what the server answers for an unhandled error
            raise
        finally:
            self._requests.count(route, status)

    # --- open pixel -----------------------------------------------------------------------

    async def _open(self, scope: Scope, send: Send, rest: str) -> None:
        method = scope["method"]
        head = method == "HEAD"
        if method != "GET" and not head:
            return await responses.method_not_allowed(send, GET_HEAD)
        token = rest[: -len(PIXEL_SUFFIX)] if rest.endswith(PIXEL_SUFFIX) else ""
        ids = self._signer.read_message_token(token) if token else None
        if ids is None:
            return await responses.not_found(send, head=head)
        deps = self._deps
        if deps is None:
            return await responses.unavailable(send, head=head)
        now = utc_now()
        # Beyond the gate's rate a flood of this pixel is answered, not recorded.
        if self._gate.admit(token, now.timestamp()):
            agent, reason = self._who(scope, head)
            payload = opened_json(new_event_id(), now, ids[0], ids[1], reason, agent.json)
            try:
                await deps.publisher.store(OPENED_SUBJECT, payload)
            except NotStoredError as exc:
                self._gate.release(token)
                self._warn(exc)
                return await responses.unavailable(send, head=head)
        await send(responses.PIXEL_START)
        await send(responses.EMPTY_BODY if head else responses.PIXEL_BODY)

    # --- click redirect -------------------------------------------------------------------

    async def _click(self, scope: Scope, send: Send, rest: str) -> None:
        method = scope["method"]
        head = method == "HEAD"
        if method != "GET" and not head:
            return await responses.method_not_allowed(send, GET_HEAD)
        parts = rest.split("/")
        if parts[-1] == "":
            parts.pop()
        if len(parts) != 3 or parts[1] != "r":
            return await responses.not_found(send, head=head)
        ids = self._signer.read_message_token(parts[0])
        if ids is None:
            return await responses.not_found(send, head=head)
        campaign_id, recipient_id = ids
        link_index = self._signer.read_link_token(campaign_id, recipient_id, parts[2])
        if link_index is None:
            return await responses.not_found(send, head=head)
        deps = self._deps
        if deps is None:
            return await responses.unavailable(send, head=head)
        try:
            link = await deps.links.url(campaign_id, link_index)
        except DATABASE_ERRORS as exc:  # no destination known: nothing recorded
            self._warn(exc)
            return await responses.unavailable(send, head=head)
        if link is None:
            return await responses.not_found(send, head=head)
        now = utc_now()
        click_token = f"{parts[0]}.{link_index}"
        # Beyond the gate's rate a flood of this link is redirected, not recorded.
        if self._gate.admit(click_token, now.timestamp()):
            agent, reason = self._who(scope, head)
            payload = clicked_json(
                new_event_id(),
                now,
                campaign_id,
                recipient_id,
                link_index,
                link.json,
                reason,
                agent.json,
            )
            try:
                await deps.publisher.store(CLICKED_SUBJECT, payload)
            except NotStoredError as exc:
                self._gate.release(click_token)
                self._warn(exc)
                return await responses.unavailable(send, head=head)
        await send(link.start)
        await send(responses.EMPTY_BODY)

    # --- unsubscribe ----------------------------------------------------------------------

    async def _unsubscribe(self, scope: Scope, receive: Receive, send: Send, rest: str) -> None:
        method = scope["method"]
        head = method == "HEAD"
        if method not in ("GET", "HEAD", "POST"):
            return await responses.method_not_allowed(send, GET_HEAD_POST)
        token = rest[:-1] if rest.endswith("/") else rest
        ids = self._signer.read_unsubscribe_token(token)
        if ids is None:
            return await responses.not_found(send, head=head)
        deps = self._deps
        if deps is None:
            return await responses.unavailable(send, head=head)
        answer: Answer | None
        try:
            if method == "POST":
                try:
                    body = await _read_body(scope, receive, MAX_FORM_BYTES)
                except FormTooLargeError:
                    return await responses.too_large(send)
                if body is None:  # the client left before its body arrived: do nothing
                    return None
                request = read_unsubscribe_post(_header(scope, b"content-type"), body)
                answer = await deps.unsubscriber.act(ids[0], ids[1], request)
            else:
                answer = await deps.unsubscriber.show(ids[0], ids[1])
        except NotStoredError as exc:
            self._warn(exc)
            return await responses.unavailable(send, head=head)
        except DATABASE_ERRORS as exc:  # the database is away
            self._warn(exc)
            return await responses.unavailable(send, head=head)
        if answer is None:
            return await responses.not_found(send, head=head)
        page = render_page(answer.kind, answer.facts)
        await responses.respond(send, 200, page, PAGE_HEADERS, head=head)

    # --- health ---------------------------------------------------------------------------

    async def _check(self) -> Readiness:
        if self._deps is not None:
            await check_live(self._deps.conns, self.readiness)
        return self.readiness

    # --- helpers --------------------------------------------------------------------------

    def _who(self, scope: Scope, head: bool) -> tuple[Agent, MachineReason]:
        """The request's agent and its machine reason ("" for a person)."""
        raw_agent = b""
        forwarded: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                raw_agent = value
            elif name == b"x-forwarded-for":
                forwarded = value if forwarded is None else forwarded + b"," + value
        agent = read_agent(raw_agent)
        ip = None
        if not (head or agent.reason):  # the address matters only for a browser's GET
            peer = scope.get("client")
            ip = client_ip(
                peer[0] if peer else None,
                forwarded.decode("latin-1") if forwarded is not None else None,
                self._trusted_proxies,
            )
        return agent, machine_reason(agent, ip, head=head)

    def _warn(self, exc: Exception) -> None:
        """One log line per WARN_EVERY_SEC at most: an outage must not flood the log."""
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SEC:
            self._warned_at = now
            log.warning("answering 503: %s", exc)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body (None if the client disconnected first), or FormTooLargeError as
    soon as it passes `limit` bytes."""
    declared = _header(scope, b"content-length")
    if declared.isdigit() and int(declared) > limit:
        raise FormTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise FormTooLargeError(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def create_app(settings: TrackerSettings) -> TrackerApp:
    """A tracker app for these settings, not yet connected (see `TrackerApp.attach`)."""
    return TrackerApp(settings)
