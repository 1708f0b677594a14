"""Claims: the sender's promise that no recipient gets a campaign twice (DESIGN §2.1).

Before SMTP the sender creates the key `<campaign>.<recipient>` in a JetStream KV bucket;
`create` fails when the key exists, so only one sender ever holds a recipient. After
SMTP it stores the outcome under the same key. The records and their transitions are
in `records.py`; this module only moves them.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from pigeon_common.jetstream import retry_refused, store_nowait
from pigeon_common.jobs import CLAIMS_BUCKET
from pigeon_sender.kvcas import compare_and_set
from pigeon_sender.records import ClaimRecord, may_claim

# An outcome is stored after SMTP took the message: giving up would leave the claim
# without one (unknown), so it is retried far longer than a request would wait.
OUTCOME_RETRY_SEC = 60.0


@dataclass(frozen=True, slots=True)
class Claim:
    """The result of trying to claim: `won`, or the record another attempt left."""

    won: bool
    record: ClaimRecord | None = None


class ClaimStore:
    def __init__(self, js: JetStreamContext, kv: KeyValue) -> None:
        self._js = js
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> ClaimStore:
        return cls(js, await js.key_value(CLAIMS_BUCKET))

    async def claim(self, key: str, value: bytes) -> Claim:
        """Take the recipient (storing `value`, a CLAIMED record), or report what is
        already recorded for it; a released (RETRY) claim is taken over."""
        try:
            # A create refused during a leader election is tried again; one whose ack was
            # lost but was stored comes back as "exists" and is read below as an earlier
            # attempt's claim (unknown, never resent).
            await retry_refused(key, lambda: self._kv.create(key, value))
            return Claim(won=True)
        except KeyWrongLastSequenceError:
            pass

        def step(current: bytes | None) -> tuple[bytes | None, Claim]:
            if current is None:
                return value, Claim(won=True)
            record = ClaimRecord.from_json(current)
            if may_claim(record):
                return value, Claim(won=True)
            return None, Claim(won=False, record=record)

        return await compare_and_set(self._kv, key, step, attempts=5)

    async def get(self, key: str) -> ClaimRecord | None:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        return ClaimRecord.from_json(entry.value)

    async def put(self, key: str, record: ClaimRecord) -> None:
        """Store a record and wait for it (a release before the job comes back)."""
        await retry_refused(key, lambda: self._kv.put(key, record.to_json()))

    async def record(self, key: str, record: ClaimRecord) -> Awaitable[Any]:
        """Store an outcome without waiting for the ack; await it before acking (it is
        retried while refused: a put of the same value is idempotent)."""
        subject = f"$KV.{CLAIMS_BUCKET}.{key}"
        return await store_nowait(self._js, subject, record.to_json(), within=OUTCOME_RETRY_SEC)
