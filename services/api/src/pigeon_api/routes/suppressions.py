"""Suppressed addresses: never sent to again from a mailbox (or from every mailbox)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from pigeon_api.commands import suppressions as commands
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.responses import NO_CONTENT, READ_ERRORS, WRITE_ERRORS
from pigeon_api.schemas.common import EmailAddress, Page
from pigeon_api.schemas.engagement import SuppressionPublic, SuppressionReason
from pigeon_api.schemas.sending import SuppressionCreate

router = APIRouter(prefix="/suppressions", tags=["suppressions"])


@router.get(
    "",
    operation_id="list_suppressions",
    response_model=Page[SuppressionPublic],
    responses=READ_ERRORS,
)
async def list_suppressions(
    user: CurrentUser,
    conn: Conn,
    email: EmailAddress | None = Query(None),
    mailbox_id: uuid.UUID | None = Query(None),
    reason: SuppressionReason | None = Query(None),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Page[SuppressionPublic]:
    """Suppressed addresses, newest first (`mailbox_id` filters one mailbox's): those of
    the caller's own mailboxes, or every one for an administrator."""
    rows, count = await commands.list_suppressions(
        conn, user, email, mailbox_id, reason, limit, offset
    )
    return Page(data=[SuppressionPublic(**dict(r.items())) for r in rows], count=count)


@router.post(
    "",
    operation_id="add_suppression",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
async def add_suppression(
    body: SuppressionCreate, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Response:
    """Suppress an address by hand (from one of the caller's mailboxes, or, for an
    administrator, from all when mailbox_id is null); the sender skips it from then on,
    also in campaigns already enqueued."""
    await commands.add_suppression(ctx, conn, user, body.email, body.mailbox_id, body.detail)
    return NO_CONTENT()


@router.delete(
    "",
    operation_id="remove_suppression",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
async def remove_suppression(
    user: CurrentUser,
    ctx: Ctx,
    conn: Conn,
    # Annotated, not `= Query(...)`: that form drops the type's validators (NUL reached
    # PostgreSQL and answered 500).
    email: Annotated[EmailAddress, Query()],
    mailbox_id: uuid.UUID | None = Query(None),
    reason: SuppressionReason | None = Query(None),
) -> Response:
    """Lift a suppression (of one mailbox, or the one for every mailbox when mailbox_id is
    left out): the one for `reason`, or every reason (an unsubscribe too) when it is left
    out; 404 when there is none."""
    await commands.lift_suppression(ctx, conn, user, email, mailbox_id, reason)
    return NO_CONTENT()
