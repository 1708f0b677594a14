"""A sliding-window throttle keyed by strings: pure logic over an in-process store.

Each key keeps the times of its recent failures (at most `limit`, so a flood cannot
grow memory per key); once `limit` fall within `window_sec` the key is refused until the
oldest of them leaves the window. The clock is injected, so tests move time by hand.
The store lives in this process only: with several API processes each counts on its own.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
# A bound on how many keys are remembered: beyond it the stalest key is forgotten, so an
# attacker cycling through made-up emails cannot grow the process without bound.
MAX_KEYS = 100_000


@dataclass
class SlidingWindow:
    """At most `limit` failures per key within any `window_sec` seconds."""

    limit: int
    window_sec: float
    clock: Clock = time.monotonic
    max_keys: int = MAX_KEYS
    _hits: collections.OrderedDict[str, collections.deque[float]] = field(
        default_factory=collections.OrderedDict
    )

    def _recent(self, key: str, now: float) -> collections.deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window_sec:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        now = self.clock()
        hits = self._recent(key, now)
        if hits is None or len(hits) < self.limit:
            return 0.0
        return max(hits[0] + self.window_sec - now, 0.0)

    def hit(self, key: str) -> None:
        """Count one failure of `key` now."""
        now = self.clock()
        hits = self._recent(key, now)
        if hits is None:
            hits = collections.deque(maxlen=self.limit)
            self._hits[key] = hits
            if len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        hits.append(now)

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)
