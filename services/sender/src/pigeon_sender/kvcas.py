"""Compare-and-set on one JetStream KV key, written once for every caller (claims, rate
counters, a run's finished chunks): read, decide, write only if nobody wrote between."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

T = TypeVar("T")
# `step(current)` -> (the value to write, or None to leave the key as it is; the result).
Step = Callable[[bytes | None], tuple[bytes | None, T]]


class ContendedKeyError(RuntimeError):
    """Raised when a key kept changing under us for `attempts` rounds."""

    def __init__(self, key: str, attempts: int) -> None:
        super().__init__(f"KV key {key} kept changing under us ({attempts} attempts)")
        self.key = key
        self.attempts = attempts


async def compare_and_set(kv: KeyValue, key: str, step: Step[T], attempts: int = 50) -> T:
    """Apply `step` to the key's current value (None when missing) until the write wins."""
    for _ in range(attempts):
        try:
            entry = await kv.get(key)
            current, revision = entry.value, entry.revision
        except KeyNotFoundError:
            current, revision = None, None
        value, result = step(current)
        if value is None:
            return result
        try:
            if revision is None:
                await kv.create(key, value)
            else:
                await kv.update(key, value, last=revision)
            return result
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            # Lost the race; nats-py's create can also say "not found" when the read it
            # makes after losing hits a replica that has not seen the winner yet.
            continue
    raise ContendedKeyError(key, attempts)
