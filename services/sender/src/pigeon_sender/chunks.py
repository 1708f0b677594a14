"""A run's finished chunks, counted in the runs bucket so the last one can complete the
campaign (any replica may finish any chunk)."""

from __future__ import annotations

import json
import uuid

from nats.js import JetStreamContext

from pigeon_common.jobs import RUNS_BUCKET
from pigeon_sender.kvcas import compare_and_set

# A run's value: this byte, then a little-endian bitmap, bit i set once chunk i is done.
# A million recipients in chunks of 100 make 1,250 bytes; the JSON list of indexes before
# it grew to 50 kB, read, rewritten and kept in the bucket's history once per chunk.
BITMAP = b"B"


def with_chunk(current: bytes | None, chunk_index: int) -> tuple[bytes | None, int]:
    """The run's set of finished chunks with one more (None: it was there already) and
    how many are finished."""
    done = _finished(current)
    bit = 1 << chunk_index
    if done & bit:
        return None, done.bit_count()
    done |= bit
    return BITMAP + done.to_bytes((done.bit_length() + 7) // 8, "little"), done.bit_count()


def _finished(value: bytes | None) -> int:
    if not value:
        return 0
    if value.startswith(BITMAP):
        return int.from_bytes(value[1:], "little")
    # A run started by a release that kept the indexes as a JSON list.
    return sum(1 << index for index in set(json.loads(value)))


async def mark_chunk_done(
    js: JetStreamContext, campaign_id: uuid.UUID, run_id: uuid.UUID, chunk_index: int
) -> int:
    """Add the chunk to its run's set of finished chunks; returns how many are finished."""
    kv = await js.key_value(RUNS_BUCKET)
    return await compare_and_set(
        kv, f"{campaign_id}.{run_id}", lambda current: with_chunk(current, chunk_index)
    )
