"""Claims: the sender's promise that no recipient gets a campaign twice (DESIGN §2.1).

Before SMTP the sender creates the key `<campaign>.<recipient>` in a JetStream KV bucket;
`create` fails when the key exists, so only one sender ever holds a recipient. After
SMTP it stores the outcome under the same key. A key still saying "claimed" when a job is
redelivered means its sender died in between: the outcome is unknown and never resent.
A temporary failure stores "retry", which a later attempt may take over.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from pigeon_common.jobs import CLAIMS_BUCKET

CLAIMED = "claimed"
CLAIMED_VALUE = json.dumps({"status": CLAIMED}).encode()
RETRY = "retry"


def claim_key(campaign_id: uuid.UUID, recipient_id: uuid.UUID) -> str:
    return f"{campaign_id}.{recipient_id}"


@dataclass(frozen=True)
class Claim:
    """The result of trying to claim: `won`, or the record another attempt left."""

    won: bool
    record: dict[str, Any] | None = None


class ClaimStore:
    def __init__(self, js: JetStreamContext, kv: KeyValue) -> None:
        self._js = js
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> ClaimStore:
        return cls(js, await js.key_value(CLAIMS_BUCKET))

    async def claim(self, key: str) -> Claim:
        """Take the recipient, or report what is already recorded for it."""
        value = CLAIMED_VALUE
        for _ in range(5):
            try:
                await self._kv.create(key, value)
                return Claim(won=True)
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self._kv.get(key)
            except KeyNotFoundError:
                continue
            record = json.loads(entry.value or b"{}")
            if record.get("status") != RETRY:
                return Claim(won=False, record=record)
            try:
                await self._kv.update(key, value, last=entry.revision)
                return Claim(won=True)
            except KeyWrongLastSequenceError:
                continue
        raise RuntimeError(f"claim {key} kept changing under us")

    async def release_for_retry(self, key: str, reason: str) -> None:
        await self._kv.put(key, json.dumps({"status": RETRY, "reason": reason}).encode())

    async def record(self, key: str, record: dict[str, Any]) -> asyncio.Future[Any]:
        """Store an outcome without waiting for the ack; await the future before acking."""
        subject = f"$KV.{CLAIMS_BUCKET}.{key}"
        return await self._js.publish_async(subject, json.dumps(record).encode())
