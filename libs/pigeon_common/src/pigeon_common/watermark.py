"""Read-your-writes: wait until the projector has applied a given stream sequence.

One LISTEN connection hears the projector's `pigeon_projected` notifications and wakes
the waiters whose sequence has been reached. If the connection drops, waiters fall back
to polling the checkpoint, so a lost notification costs latency, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from pigeon_common import db
from pigeon_common.read_models import PROJECTED_CHANNEL, read_checkpoint

log = logging.getLogger(__name__)
POLL_INTERVAL_SEC = 0.25


class ProjectionWatermark:
    """The highest sequence the read models are known to contain."""

    def __init__(self, database_url: str, pool: asyncpg.Pool) -> None:
        self._url = database_url
        self._pool = pool
        self._conn: asyncpg.Connection | None = None
        self._current = 0
        self._changed = asyncio.Condition()
        # The loop keeps only weak references to tasks: these are held until they ran.
        self._advancing: set[asyncio.Task[None]] = set()

    @property
    def current(self) -> int:
        return self._current

    async def start(self) -> None:
        self._conn = await db.connect(self._url)
        await self._conn.add_listener(PROJECTED_CHANNEL, self._on_notify)
        await self.refresh()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            task = asyncio.get_running_loop().create_task(self._advance(int(payload)))
            self._advancing.add(task)
            task.add_done_callback(self._advancing.discard)

    async def _advance(self, seq: int) -> None:
        async with self._changed:
            # A rebuild can move the checkpoint back; the stored value is the truth.
            self._current = seq
            self._changed.notify_all()

    async def refresh(self) -> int:
        async with self._pool.acquire() as conn:
            seq = await read_checkpoint(conn)
        await self._advance(seq)
        return seq

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """True once the read models contain `seq`; False when `timeout` ran out first."""
        if self._current >= seq:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return await self.refresh() >= seq
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: self._current >= seq),
                        timeout=min(remaining, POLL_INTERVAL_SEC),
                    )
            if self._current >= seq:
                return True
            if self._conn is None or self._conn.is_closed():
                await self.refresh()
