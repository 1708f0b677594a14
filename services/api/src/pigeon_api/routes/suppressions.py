"""Suppressed addresses: never sent to again from a mailbox (or from every mailbox)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from pigeon_api.deps import Ctx, CurrentUser
from pigeon_api.schemas.sending import SuppressionCreate
from pigeon_common import events as ev

router = APIRouter(prefix="/suppressions", tags=["suppressions"])


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
