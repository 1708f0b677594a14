"""The bytes of sent messages whose Sent copy is not filed yet, kept in JetStream KV.

A message's exact bytes are stored (and acknowledged) before its SMTP DATA, under
`records.copy_key`, and deleted once a `sent_copies.filed` event is stored. So a sender
that dies at any point leaves whatever is needed to file the copy to whoever takes the
chunk over; a key still present means the copy is owed.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue

from pigeon_common.jetstream import store_nowait
from pigeon_common.jobs import COPIES_BUCKET

KV_OPERATION = "KV-Operation"
DELETE = "DEL"


class CopyStore:
    def __init__(self, js: JetStreamContext, kv: KeyValue) -> None:
        self._js = js
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> CopyStore:
        return cls(js, await js.key_value(COPIES_BUCKET))

    async def keep(self, key: str, raw: bytes) -> Awaitable[Any]:
        """Store the bytes; await the result before the message goes to SMTP."""
        return await store_nowait(self._js, f"$KV.{COPIES_BUCKET}.{key}", raw)

    async def get(self, key: str) -> bytes | None:
        try:
            entry = await self._kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return entry.value

    async def forget(self, key: str) -> Awaitable[Any]:
        """Delete the bytes (the copy is filed, or none is needed) without waiting."""
        return await store_nowait(
            self._js, f"$KV.{COPIES_BUCKET}.{key}", b"", {KV_OPERATION: DELETE}
        )
