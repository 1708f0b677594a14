"""A run's finished chunks, counted in the runs bucket so the last one can complete the
campaign (any replica may finish any chunk)."""

from __future__ import annotations

import json
import uuid

from nats.js import JetStreamContext

from pigeon_common.jobs import RUNS_BUCKET
from pigeon_sender.kvcas import compare_and_set


def with_chunk(current: bytes | None, chunk_index: int) -> tuple[bytes | None, int]:
    """The run's set of finished chunks with one more (None: it was there already) and
    how many are finished."""
    done = set(json.loads(current or b"[]"))
    if chunk_index in done:
        return None, len(done)
    done.add(chunk_index)
    return json.dumps(sorted(done)).encode(), len(done)


async def mark_chunk_done(
    js: JetStreamContext, campaign_id: uuid.UUID, run_id: uuid.UUID, chunk_index: int
) -> int:
    """Add the chunk to its run's set of finished chunks; returns how many are finished."""
    kv = await js.key_value(RUNS_BUCKET)
    return await compare_and_set(
        kv, f"{campaign_id}.{run_id}", lambda current: with_chunk(current, chunk_index)
    )
