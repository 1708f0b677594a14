"""Storing a command's events, and the ids that make a retried create idempotent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pigeon_api.context import ApiContext
from pigeon_common import events as ev
from pigeon_common.domain.access import Actor

IDEMPOTENCY_NAMESPACE = uuid.UUID("5d2b1f0e-3c4a-4e8b-9a61-7f0c2d9e8b13")


@dataclass(frozen=True, slots=True)
class Stored:
    """A write's answer: the resource id, whether the read models already show it
    (False: stored, visible shortly), and whether it was new."""

    id: uuid.UUID
    projected: bool
    created: bool = True


def new_id(actor: Actor, kind: str, idempotency_key: str | None) -> uuid.UUID:
    """A fresh id, or, with an idempotency key, the same id for the same user, kind and
    key, so a retried create finds what the first one made."""
    if idempotency_key is None:
        return uuid.uuid4()
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{actor.user_id}:{kind}:{idempotency_key}")


async def store(
    ctx: ApiContext,
    actor: Actor,
    aggregate_id: uuid.UUID | str,
    events: list[ev.Event],
    *,
    event_id: uuid.UUID | None = None,
) -> bool:
    """Store the events (nothing for none); True once the read models show them.
    `event_id` (one event only) makes a retried publish deduplicate in the stream."""
    if not events:
        return True
    envelopes = [
        ev.envelope_for(e, str(aggregate_id), actor=str(actor.user_id), event_id=event_id)
        for e in events
    ]
    return await ctx.commit_many(envelopes)
