"""Suppression commands: an address is never sent to again from a mailbox (or from every
mailbox). A mailbox's suppressions are its owner's to see and change; the ones for every
mailbox are the administrators'."""

from __future__ import annotations

import uuid
from typing import Any

from pigeon_api.commands.loading import mailbox_row
from pigeon_api.context import SQL, ApiContext
from pigeon_common import events as ev
from pigeon_common.domain.access import (
    EVERY_MAILBOX,
    Action,
    Actor,
    authorize,
    suppressions_scope,
)
from pigeon_common.domain.errors import NotFound
from pigeon_common.read_models import NIL_MAILBOX
from pigeon_common.validation import address_key


async def _authorize(conn: Any, actor: Actor, mailbox_id: uuid.UUID | None, action: Action) -> None:
    if mailbox_id is None:
        authorize(actor, action, EVERY_MAILBOX)
    else:
        await mailbox_row(conn, actor, mailbox_id, action)


async def list_suppressions(
    conn: Any,
    actor: Actor,
    email: str | None,
    mailbox_id: uuid.UUID | None,
    reason: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    if mailbox_id is not None:
        await mailbox_row(conn, actor, mailbox_id, Action.SUPPRESSIONS_VIEW)
    scope = suppressions_scope(actor)
    filters = (address_key(email) if email else None, mailbox_id, reason)
    visible = (scope.everything, scope.user_id)
    rows = await conn.fetch(SQL.list_suppressions, *filters, *visible, limit, offset)
    return list(rows), int(await conn.fetchval(SQL.count_suppressions, *filters, *visible))


async def add_suppression(
    ctx: ApiContext, conn: Any, actor: Actor, email: str, mailbox_id: uuid.UUID | None, detail: str
) -> None:
    await _authorize(conn, actor, mailbox_id, Action.SUPPRESSIONS_EDIT)
    event = ev.AddressSuppressed(email=email, mailbox_id=mailbox_id, reason="manual", detail=detail)
    await ctx.commit(ev.envelope_for(event, email, actor=str(actor.user_id)))


async def lift_suppression(
    ctx: ApiContext,
    conn: Any,
    actor: Actor,
    email: str,
    mailbox_id: uuid.UUID | None,
    reason: str | None,
) -> None:
    """Lift the one for `reason`, or every reason (an unsubscribe too) when None."""
    await _authorize(conn, actor, mailbox_id, Action.SUPPRESSIONS_EDIT)
    key, mailbox = address_key(email), mailbox_id or NIL_MAILBOX
    if not await conn.fetchval(SQL.suppression_exists, key, mailbox, reason):
        raise NotFound("suppression")
    event = ev.AddressUnsuppressed(email=email, mailbox_id=mailbox_id, reason=reason)
    await ctx.commit(ev.envelope_for(event, email, actor=str(actor.user_id)))
