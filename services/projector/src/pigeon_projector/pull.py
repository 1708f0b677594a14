"""A lean pull consumer for reading the event stream in order, fast.

nats-py's `fetch()` spends most of its time per message in bookkeeping (a task and a
UUID per message); here one inbox subscription with a callback receives every batch,
the next batch is requested as soon as the previous one has arrived (so the server
sends while the caller works), and the stream sequence is read straight from the reply
subject instead of parsing full metadata.

Every request expires after `expires_sec`, and the server then says so (408), so a
request that hears nothing at all for much longer was lost with its consumer (the node
that held it died, as in a NATS cluster's leader change): `next_batch` raises
PullStalledError and the caller starts a new consumer from its own position.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, Header

# Status codes a pull request ends with: no messages, request expired, request closed.
_END_OF_REQUEST = frozenset({"404", "408", "409"})
# Silence beyond the request's expiry after which it counts as lost.
STALL_GRACE_SEC = 4.0
# The bytes one request asks for at most: a thousand imported events of 160 kB each
# would otherwise sit here at once. Above NATS's largest message, so each request
# delivers at least one.
PULL_MAX_BYTES = 4 * 1024 * 1024


class PullStalledError(Exception):
    """Raised when a pull request got neither messages nor its expiry notice within
    `silent_sec`: the consumer is gone (its server died); start a new one."""

    def __init__(self, consumer: str, silent_sec: float) -> None:
        super().__init__(f"consumer {consumer} silent for {silent_sec:.1f}s")
        self.consumer = consumer
        self.silent_sec = silent_sec


def stream_sequence(reply: str) -> int:
    """The stream sequence in a JetStream ack subject (both the v1 and v2 layouts)."""
    tokens = reply.split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(tokens[5])
    if len(tokens) >= 12:  # $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>…
        return int(tokens[7])
    raise ValueError(f"not a JetStream ack subject: {reply!r}")


def consumer_pending(reply: str) -> int:
    """How many messages the consumer had left after this one (from its ack subject)."""
    tokens = reply.split(".")
    if len(tokens) == 9:
        return int(tokens[8])
    if len(tokens) >= 12:  # ...<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]
        return int(tokens[10])
    raise ValueError(f"not a JetStream ack subject: {reply!r}")


class BatchPuller:
    """Reads an ephemeral consumer batch by batch with one request always in flight."""

    def __init__(
        self,
        nc: NatsClient,
        js: JetStreamContext,
        stream: str,
        config: ConsumerConfig,
        *,
        batch: int = 1000,
        expires_sec: float = 1.0,
        max_bytes: int = PULL_MAX_BYTES,
    ) -> None:
        self._nc = nc
        self._js = js
        self._stream = stream
        self._config = config
        self._batch = batch
        self._max_bytes = max_bytes
        self._expires_ns = int(expires_sec * 1e9)
        self._stall_sec = expires_sec + STALL_GRACE_SEC
        self._heard_at = 0.0
        self._ready: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        self._outstanding = 0
        self._inbox = ""
        self._next_subject = ""
        self._sub: Subscription | None = None
        self.consumer = ""

    async def start(self) -> None:
        info = await self._js.add_consumer(self._stream, self._config)
        self.consumer = info.name
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{self.consumer}"
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)
        await self._request()

    async def _on_msg(self, msg: Msg) -> None:
        self._heard_at = asyncio.get_running_loop().time()
        status = msg.headers.get(Header.STATUS) if msg.headers else None
        if status is not None:
            if status in _END_OF_REQUEST:
                self._outstanding = 0
                self._arrived.set()
            return  # heartbeats and other control messages
        self._outstanding -= 1
        self._ready.append(msg)
        self._arrived.set()

    async def _request(self) -> None:
        self._outstanding = self._batch
        self._heard_at = asyncio.get_running_loop().time()
        body = json.dumps(
            {"batch": self._batch, "expires": self._expires_ns, "max_bytes": self._max_bytes}
        ).encode()
        await self._nc.publish(self._next_subject, body, reply=self._inbox)

    async def next_batch(self, limit: int, timeout: float) -> list[Msg]:
        """Up to `limit` messages in stream order; empty after `timeout` with none.
        Raises PullStalledError when the consumer went silent (see the module)."""
        if not self._ready and self._outstanding > 0:
            silent = asyncio.get_running_loop().time() - self._heard_at
            if silent > self._stall_sec:
                raise PullStalledError(self.consumer, silent)
        if not self._ready:
            self._arrived.clear()
            if self._outstanding <= 0:
                await self._request()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        taken = [self._ready.popleft() for _ in range(min(limit, len(self._ready)))]
        if self._outstanding <= 0:
            await self._request()
        return taken

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        with contextlib.suppress(Exception):
            await self._js.delete_consumer(self._stream, self.consumer)
