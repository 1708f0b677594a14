"""Storing one event in JetStream before the tracker answers, or knowing that it was not.

Each request publishes with a reply subject of its own under one inbox this publisher
listens on, and waits only for its own ack; the publishes of concurrent requests leave
in one socket write (nats-py's flusher) and their acks come back together. This is what
`js.publish_async` does, minus what costs on a hot path: two `wait_for` per publish
(each a task and a timer), random tokens and a parsed `PubAck` dataclass. Instead acks
wait in one dict keyed by a counter, and one sweeper fails those older than `timeout`.

The NATS connection is opened without a reconnect buffer: while NATS is away a publish
fails at once instead of being kept and sent after the request was answered 503.

A publish that is refused (no stream leader during a NATS cluster's election, the
connection between servers) is sent again with backoff for the process's retry window
(PIGEON_PUBLISH_RETRY_SEC) before the request is answered 503. One whose ack never came
may have been stored: it is sent again only when it has a message id (JetStream drops
the copy); an open or a click has none, so it is answered 503 instead of risking two.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from pigeon_common.backoff import Backoff
from pigeon_common.events import EVENT_SUBJECT_PREFIX
from pigeon_common.jetstream import EVENTS_STREAM, Header, publish_retry_sec
from pigeon_common.metrics import EVENTS as EVENT_COUNTS

log = logging.getLogger(__name__)

ACK_TIMEOUT_SEC = 2.0
SWEEP_EVERY_SEC = 0.1
EXPECTED_STREAM = "Nats-Expected-Stream"
STATUS = "Status"
NO_RESPONDERS = "503"
_PLAIN_ACK = b'{"stream":"%s","seq":' % EVENTS_STREAM.encode()
# Only the EVENTS stream may store a tracker event. No message id by default: the
# tracker never retries a publish; ids are given only to bound floods (coalesce.py).
HEADERS = {EXPECTED_STREAM: EVENTS_STREAM}


UNAVAILABLE = 503  # JetStream's own "temporarily unavailable" (no stream leader yet)


class NotStoredError(Exception):
    """Raised when JetStream did not confirm storing an event (NATS away, no stream, an
    error or no ack within the timeout); `reason` says which. The event may still have
    been stored if only its ack was lost, but it was never confirmed. `refused` is true
    when it was certainly not stored and trying again may succeed."""

    def __init__(self, reason: str, *, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused


@dataclass(frozen=True, slots=True)
class Stored:
    """JetStream's ack: the stream sequence, and whether the message id was already seen
    (then `seq` is the first copy's)."""

    seq: int
    duplicate: bool


def read_ack(data: bytes, status: str | None) -> Stored | NotStoredError:
    """The meaning of JetStream's answer to one publish (pure, for tests)."""
    if data.startswith(_PLAIN_ACK) and data.endswith(b"}"):
        digits = data[len(_PLAIN_ACK) : -1]
        if digits.isdigit():  # the usual answer, read without a JSON parser
            return Stored(int(digits), False)
    if status == NO_RESPONDERS:  # no stream, or its leader is being elected
        return NotStoredError("no stream stores this subject", refused=True)
    try:
        answer = json.loads(data)
    except ValueError:
        return NotStoredError(f"unreadable ack {data[:100]!r}")
    if not isinstance(answer, dict) or "error" in answer or "seq" not in answer:
        error = answer.get("error") if isinstance(answer, dict) else answer
        unavailable = isinstance(error, dict) and error.get("code") == UNAVAILABLE
        return NotStoredError(f"JetStream refused: {error}", refused=unavailable)
    return Stored(int(answer["seq"]), bool(answer.get("duplicate", False)))


class EventPublisher:
    """Publishes stored-before-answer events to the EVENTS stream on one connection."""

    def __init__(self, nc: NatsClient, timeout: float = ACK_TIMEOUT_SEC) -> None:
        self._nc = nc
        self._timeout = timeout
        self._prefix = ""
        self._counter = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[Stored]] = {}
        self._deadlines: collections.deque[tuple[float, str]] = collections.deque()
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscription: Any = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._prefix = self._nc.new_inbox() + "."
        self._subscription = await self._nc.subscribe(self._prefix + "*", cb=self._on_ack)
        self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(NotStoredError("tracker stopping"))
        self._waiting.clear()
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    async def store(self, subject: str, payload: bytes, msg_id: str | None = None) -> Stored:
        """Publish and wait for the ack; raises NotStoredError when it is not confirmed
        within the retry window (see the module's docstring). With `msg_id`, a second
        event under the same id within the duplicate window is not stored again
        (`Stored.duplicate`, with the first one's sequence)."""
        event_type = subject.removeprefix(EVENT_SUBJECT_PREFIX + ".")
        try:
            stored = await self._store_retrying(subject, payload, msg_id)
        except NotStoredError:
            EVENT_COUNTS.failed(event_type)
            raise
        EVENT_COUNTS.stored(event_type)
        return stored

    async def _store_retrying(self, subject: str, payload: bytes, msg_id: str | None) -> Stored:
        try:
            return await self._store_once(subject, payload, msg_id)
        except NotStoredError as exc:
            if not (exc.refused or msg_id is not None) or self._loop is None:
                raise
            first = exc
        deadline = self._loop.time() + publish_retry_sec()
        backoff = Backoff(initial=0.1, maximum=1.0)
        while True:
            delay = backoff.next_delay()
            if self._loop.time() + delay > deadline:
                raise first
            await asyncio.sleep(delay)
            try:
                return await self._store_once(subject, payload, msg_id)
            except NotStoredError as exc:
                if not (exc.refused or msg_id is not None):
                    raise
                first = exc

    async def _store_once(self, subject: str, payload: bytes, msg_id: str | None) -> Stored:
        if not self._nc.is_connected or self._loop is None:
            raise NotStoredError("NATS not connected", refused=True)
        token = self._prefix + str(next(self._counter))
        future: asyncio.Future[Stored] = self._loop.create_future()
        self._waiting[token] = future
        self._deadlines.append((self._loop.time() + self._timeout, token))
        try:
            headers = HEADERS if msg_id is None else {**HEADERS, Header.MSG_ID: msg_id}
            await self._nc.publish(subject, payload, reply=token, headers=headers)
            stored = await future
        except NotStoredError:
            raise
        except Exception as exc:  # nats-py raises many kinds; each means "not stored"
            raise NotStoredError(f"{type(exc).__name__}: {exc}", refused=True) from None
        finally:
            self._waiting.pop(token, None)
        return stored

    async def _on_ack(self, msg: Msg) -> None:
        future = self._waiting.get(msg.subject)
        if future is None or future.done():
            return
        status = msg.headers.get(STATUS) if msg.headers else None
        outcome = read_ack(msg.data, status)
        if isinstance(outcome, Stored):
            future.set_result(outcome)
        else:
            future.set_exception(outcome)

    async def _sweep(self) -> None:
        """Fail the publishes whose ack is overdue (deadlines are in publish order)."""
        assert self._loop is not None
        deadlines = self._deadlines
        while True:
            await asyncio.sleep(SWEEP_EVERY_SEC)
            now = self._loop.time()
            while deadlines and deadlines[0][0] <= now:
                _, token = deadlines.popleft()
                future = self._waiting.get(token)
                if future is not None and not future.done():
                    future.set_exception(NotStoredError("no ack from JetStream in time"))
