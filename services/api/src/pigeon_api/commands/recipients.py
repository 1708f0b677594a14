"""Recipient commands: add, import and delete (while the campaign may still change), and
the reads of a campaign's recipients."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pigeon_api.commands.loading import campaign_for, campaign_row
from pigeon_api.context import SQL, ApiContext
from pigeon_api.recipient_input import MergedRecipients
from pigeon_common import events as ev
from pigeon_common.domain import campaign as rules
from pigeon_common.domain.access import Action, Actor
from pigeon_common.domain.errors import NotFound

Source = Literal["api", "bulk", "csv"]


async def editable_campaign(conn: Any, actor: Actor, campaign_id: uuid.UUID) -> None:
    """Refuse early (before a CSV is read) when the list may not change."""
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_EDIT)
    rules.decide(state, rules.ChangeRecipients())


async def add_recipients(
    ctx: ApiContext,
    conn: Any,
    actor: Actor,
    campaign_id: uuid.UUID,
    merged: MergedRecipients,
    source: Source,
) -> bool:
    """Store the validated, merged rows (one event per group); True once the read models
    show them."""
    await editable_campaign(conn, actor, campaign_id)
    # The groups were validated field by field on the way in and are kept as JSON; the
    # events are built around it as stored (see events.RecipientsAdded).
    head = f'{{"campaign_id":"{campaign_id}","source":"{source}","recipients":'.encode()
    events = (
        ev.encoded_with_data(
            ev.RecipientsAdded, head + group + b"}", str(campaign_id), actor=str(actor.user_id)
        )
        for group in merged.groups()
    )
    try:
        return await ctx.commit_encoded(events)
    finally:
        merged.close()


async def delete_recipient(
    ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID, recipient_id: uuid.UUID
) -> None:
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_EDIT)
    rules.decide(state, rules.ChangeRecipients("changed"))
    if await conn.fetchrow(SQL.recipient_by_id, campaign_id, recipient_id) is None:
        raise NotFound("recipient")
    event = ev.RecipientDeleted(campaign_id=campaign_id, recipient_id=recipient_id)
    await ctx.commit(ev.envelope_for(event, str(campaign_id), actor=str(actor.user_id)))


async def get_recipient(
    conn: Any, actor: Actor, campaign_id: uuid.UUID, recipient_id: uuid.UUID
) -> Any:
    await campaign_row(conn, actor, campaign_id, Action.CAMPAIGN_VIEW)
    row = await conn.fetchrow(SQL.recipient_by_id, campaign_id, recipient_id)
    if row is None:
        raise NotFound("recipient")
    return row
