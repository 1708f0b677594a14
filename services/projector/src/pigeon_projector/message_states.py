"""Per-message states and per-campaign counters (tables of migration 0008), kept by the
projector beside the other read models.

The pure part says which (campaign, recipient) pairs an event touches; after a batch's
writes, `refresh` recomputes those pairs' state rows from the read models and moves each
campaign's counters by the difference, in one statement. A counter is thus always the
sum over the state rows, so batch sizes and rebuilds never change it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from pigeon_common import events as ev
from pigeon_common.queries import Queries
from pigeon_projector.projection import Write

STATES_SQL = Queries.from_package("pigeon_projector", "message_states.sql")
TABLES: tuple[str, ...] = ("message_states", "campaign_counters")

Pair = tuple[uuid.UUID, uuid.UUID]


def touched_by(event: ev.Event) -> list[Pair]:
    """The (campaign, recipient) pairs whose state an event may change and that the
    refresh recomputes. An import's are not among them: its statement keeps the states
    itself where it can and returns the pairs it leaves (see projection.sql's
    upsert-recipients), which the projector adds to the batch's."""
    if isinstance(event, ev.RecipientsAdded):
        return []
    if isinstance(event, ev.SentCopiesFiled | ev.SentCopiesPending):
        # `appended` is part of the state.
        return [(event.campaign_id, r) for r in event.recipient_ids]
    campaign_id = getattr(event, "campaign_id", None)
    recipient_id = getattr(event, "recipient_id", None)
    if isinstance(campaign_id, uuid.UUID) and isinstance(recipient_id, uuid.UUID):
        return [(campaign_id, recipient_id)]
    return []


def writes_for(event: ev.Event) -> list[Write]:
    """Writes an event makes here directly (a deleted campaign loses all its rows)."""
    if isinstance(event, ev.CampaignDeleted):
        return [
            Write(STATES_SQL.delete_campaign_states, (event.campaign_id,)),
            Write(STATES_SQL.delete_campaign_counters, (event.campaign_id,)),
        ]
    return []


async def refresh(conn: asyncpg.Connection, pairs: Sequence[Pair]) -> None:
    """Recompute the state rows of `pairs` and their campaigns' counters (in the caller's
    transaction, after the batch's other writes): one statement, whatever the count.
    Repeated pairs are left for the statement to fold (hashing UUIDs in Python is slow)."""
    if not pairs:
        return
    await conn.execute(
        STATES_SQL.refresh_message_states, [c for c, _ in pairs], [r for _, r in pairs]
    )
