"""Suppressed addresses: never sent to again from a mailbox (or from every mailbox)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response, status

from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.errors import not_found
from pigeon_api.paging import fetch_page
from pigeon_api.schemas.common import EmailAddress, Page
from pigeon_api.schemas.engagement import SuppressionPublic, SuppressionReason
from pigeon_api.schemas.sending import SuppressionCreate
from pigeon_common import events as ev
from pigeon_common.projection import NIL_MAILBOX
from pigeon_common.validation import address_key

router = APIRouter(prefix="/suppressions", tags=["suppressions"])


@router.get("", operation_id="list_suppressions", response_model=Page[SuppressionPublic])
async def list_suppressions(
    _user: CurrentUser,
    conn: Conn,
    email: EmailAddress | None = Query(None),
    mailbox_id: uuid.UUID | None = Query(None),
    reason: SuppressionReason | None = Query(None),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> Page[SuppressionPublic]:
    """Suppressed addresses, newest first (`mailbox_id` filters one mailbox's)."""
    key = address_key(email) if email else None
    return await fetch_page(
        conn,
        SuppressionPublic,
        SQL.list_suppressions,
        SQL.count_suppressions,
        (key, mailbox_id, reason),
        limit,
        offset,
    )


@router.post(
    "",
    operation_id="add_suppression",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def add_suppression(body: SuppressionCreate, user: CurrentUser, ctx: Ctx) -> Response:
    """Suppress an address by hand (from one mailbox, or from all when mailbox_id is null);
    the sender skips it from then on, also in campaigns already enqueued."""
    event = ev.AddressSuppressed(
        email=body.email, mailbox_id=body.mailbox_id, reason="manual", detail=body.detail
    )
    await ctx.commit(ev.envelope_for(event, body.email, actor=str(user.id)))
    return Response(status_code=204)


@router.delete(
    "",
    operation_id="remove_suppression",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def remove_suppression(
    user: CurrentUser,
    ctx: Ctx,
    conn: Conn,
    email: EmailAddress = Query(...),
    mailbox_id: uuid.UUID | None = Query(None),
    reason: SuppressionReason | None = Query(None),
) -> Response:
    """Lift a suppression (of one mailbox, or the one for every mailbox when mailbox_id is
    left out): the one for `reason`, or every reason (an unsubscribe too) when it is left
    out; 404 when there is none."""
    key, mailbox = address_key(email), mailbox_id or NIL_MAILBOX
    if await conn.fetchval(SQL.suppression_exists, key, mailbox, reason):
        event = ev.AddressUnsuppressed(email=email, mailbox_id=mailbox_id, reason=reason)
        await ctx.commit(ev.envelope_for(event, email, actor=str(user.id)))
        return Response(status_code=204)
    raise not_found("suppression")
