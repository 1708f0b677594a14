"""Per-mailbox send limits (per second, hour, day) shared by every sender replica.

Counters live in a JetStream KV bucket, one key per mailbox and window, updated with
compare-and-set. A sender reserves a block of sends at once and spends it locally, so
the shared counter is touched once per block, not once per message. Unspent sends are
not returned: the limit is never exceeded, at worst slightly under-used.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from pigeon_common.jobs import RATES_BUCKET
from pigeon_sender.kvcas import ContendedKeyError, compare_and_set

WINDOWS = (("s", 1), ("h", 3600), ("d", 86400))


@dataclass(frozen=True)
class Limits:
    per_second: int | None
    per_hour: int | None
    per_day: int | None

    def by_window(self) -> list[tuple[str, int, int]]:
        """(name, seconds, limit) of every window that has a limit."""
        values = {"s": self.per_second, "h": self.per_hour, "d": self.per_day}
        return [(name, span, values[name]) for name, span in WINDOWS if values[name]]  # type: ignore[misc]


# Sends reserved in a window must be handed over before it ends, with this margin for
# the time a message takes to reach the server.
WINDOW_MARGIN_SEC = 0.1


@dataclass(frozen=True)
class Grant:
    """`count` sends may go until `valid_until` (time.time()); when 0, `retry_after`
    seconds until a window opens."""

    count: int
    retry_after: float = 0.0
    valid_until: float = float("inf")


def window_start(now: float, span: int) -> int:
    return int(now // span) * span


class RateLimiter:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> RateLimiter:
        return cls(await js.key_value(RATES_BUCKET))

    async def reserve(self, mailbox_id: uuid.UUID, limits: Limits, wanted: int) -> Grant:
        """Reserve up to `wanted` sends in every limited window at once."""
        windows = limits.by_window()
        if not windows:
            return Grant(wanted)
        now = time.time()
        granted = wanted
        for name, span, limit in windows:
            used = await self._used(mailbox_id, name, window_start(now, span))
            free = limit - used
            if free <= 0:
                return Grant(0, retry_after=window_start(now, span) + span - now + 0.01)
            granted = min(granted, free)
        for name, span, limit in windows:
            got = await self._take(mailbox_id, name, window_start(now, span), limit, granted)
            granted = min(granted, got)
            if granted == 0:
                return Grant(0, retry_after=window_start(now, span) + span - now + 0.01)
        ends = min(window_start(now, span) + span for _, span, _ in windows)
        return Grant(granted, valid_until=ends - WINDOW_MARGIN_SEC)

    def _key(self, mailbox_id: uuid.UUID, name: str, start: int) -> str:
        return f"{mailbox_id}.{name}.{start}"

    async def _used(self, mailbox_id: uuid.UUID, name: str, start: int) -> int:
        try:
            entry = await self._kv.get(self._key(mailbox_id, name, start))
        except KeyNotFoundError:
            return 0
        return int(entry.value or b"0")

    async def _take(
        self, mailbox_id: uuid.UUID, name: str, start: int, limit: int, wanted: int
    ) -> int:
        def step(current: bytes | None) -> tuple[bytes | None, int]:
            used = int(current or b"0")
            take = min(wanted, limit - used)
            if take <= 0:
                return None, 0
            return str(used + take).encode(), take

        try:
            return await compare_and_set(self._kv, self._key(mailbox_id, name, start), step, 20)
        except ContendedKeyError:
            return 0  # too contended: no sends this round, the job waits and retries
