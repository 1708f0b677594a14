"""The bytes of sent messages whose Sent copy is not filed yet, kept in JetStream KV.

A message's exact bytes are stored (and acknowledged) before its SMTP DATA, under
`records.copy_key`, and deleted once a `sent_copies.filed` event is stored. So a sender
that dies at any point leaves whatever is needed to file the copy to whoever takes the
chunk over; a key still present means the copy is owed. The value carries the Sent
folder's UID floor of the chunk that kept it (`uid_floor.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue

from pigeon_common.jetstream import store_nowait
from pigeon_common.jobs import COPIES_BUCKET
from pigeon_sender.uid_floor import KeptCopy, UidFloor, pack, unpack

KV_OPERATION = "KV-Operation"
DELETE = "DEL"


class CopyStore:
    def __init__(self, js: JetStreamContext, kv: KeyValue) -> None:
        self._js = js
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> CopyStore:
        return cls(js, await js.key_value(COPIES_BUCKET))

    async def keep(self, key: str, raw: bytes, floor: UidFloor | None) -> Awaitable[Any]:
        """Store the bytes; await the result before the message goes to SMTP."""
        return await store_nowait(self._js, f"$KV.{COPIES_BUCKET}.{key}", pack(raw, floor))

    async def get(self, key: str) -> KeptCopy | None:
        try:
            entry = await self._kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return None if entry.value is None else unpack(entry.value)

    async def forget(self, key: str) -> Awaitable[Any]:
        """Delete the bytes (the copy is filed, or none is needed) without waiting."""
        return await store_nowait(
            self._js, f"$KV.{COPIES_BUCKET}.{key}", b"", {KV_OPERATION: DELETE}
        )
