"""Campaigns: drafting, editing, deleting, cloning and sharing. Each route translates
HTTP to a command of `pigeon_api.commands.campaigns` and its result back."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import JSONResponse

from pigeon_api.commands import campaigns as commands
from pigeon_api.commands.storing import Stored
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.responses import NO_CONTENT, WRITE_ERRORS, accepted_or
from pigeon_api.schemas.campaigns import (
    CampaignClone,
    CampaignCreate,
    CampaignPublic,
    CampaignUpdate,
)
from pigeon_api.schemas.common import Accepted, Page, ShareCreate, SharePublic
from pigeon_common.domain.access import Actor
from pigeon_common.domain.status import CampaignStatus

router = APIRouter(prefix="/campaigns", tags=["campaigns"])
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="A retried create with the same key (from the same user) returns what "
        "the first one created instead of creating again.",
    ),
]


def public(row: Any) -> CampaignPublic:
    return CampaignPublic(
        id=row["id"],
        name=row["name"],
        subject=row["subject"],
        template_markdown=row["template_markdown"],
        mailbox_id=row["mailbox_id"],
        owner_id=row["owner_id"],
        shared_with=list(row["shared_with"] or ()),
        cloned_from=row["cloned_from"],
        status=row["status"],
        status_reason=row["status_reason"],
        send_at=row["send_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        recipient_count=row["recipient_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _answer(conn: Conn, actor: Actor, stored: Stored, code: int) -> Any:
    if not stored.projected:
        return accepted_or(stored.id)
    row = await commands.get_campaign(conn, actor, stored.id)
    return JSONResponse(
        public(row).model_dump(mode="json"), status_code=code if stored.created else 200
    )


@router.post(
    "",
    operation_id="create_campaign",
    response_model=CampaignPublic,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": CampaignPublic}, 202: {"model": Accepted}, **WRITE_ERRORS},
)
async def create_campaign(
    body: CampaignCreate,
    user: CurrentUser,
    ctx: Ctx,
    conn: Conn,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Draft a campaign, owned by the caller. With an `Idempotency-Key`, a retry answers
    200 with the campaign the first call created."""
    draft = commands.CampaignDraft(**body.model_dump())
    stored = await commands.create_campaign(ctx, conn, user, draft, idempotency_key)
    return await _answer(conn, user, stored, 201)


@router.get("", operation_id="list_campaigns", response_model=Page[CampaignPublic])
async def list_campaigns(
    user: CurrentUser,
    conn: Conn,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
    status: CampaignStatus | None = Query(None),
) -> Page[CampaignPublic]:
    """The campaigns the caller owns or that are shared with it (all, for an admin)."""
    rows, count = await commands.list_campaigns(conn, user, status, limit, offset)
    return Page(data=[public(r) for r in rows], count=count)


@router.get("/{campaign_id}", operation_id="get_campaign", response_model=CampaignPublic)
async def get_campaign(campaign_id: uuid.UUID, user: CurrentUser, conn: Conn) -> CampaignPublic:
    return public(await commands.get_campaign(conn, user, campaign_id))


@router.patch(
    "/{campaign_id}",
    operation_id="update_campaign",
    response_model=CampaignPublic,
    responses={202: {"model": Accepted}, **WRITE_ERRORS},
)
async def update_campaign(
    campaign_id: uuid.UUID, body: CampaignUpdate, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Any:
    """Change the given fields (a draft or scheduled campaign only: 409 once sending)."""
    changes = body.model_dump(exclude_unset=True)
    stored = await commands.update_campaign(ctx, conn, user, campaign_id, changes)
    return await _answer(conn, user, stored, 200)


@router.delete(
    "/{campaign_id}",
    operation_id="delete_campaign",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
async def delete_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Response:
    """Delete a draft or scheduled campaign with its recipients (its owner or an admin)."""
    await commands.delete_campaign(ctx, conn, user, campaign_id)
    return NO_CONTENT()


@router.post(
    "/{campaign_id}/clone",
    operation_id="clone_campaign",
    response_model=CampaignPublic,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": CampaignPublic}, 202: {"model": Accepted}, **WRITE_ERRORS},
)
async def clone_campaign(
    campaign_id: uuid.UUID,
    user: CurrentUser,
    ctx: Ctx,
    conn: Conn,
    body: CampaignClone | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """A new draft owned by the caller with this campaign's name, subject, template and
    (when the caller may use it) mailbox; no recipients."""
    name = body.name if body else None
    stored = await commands.clone_campaign(ctx, conn, user, campaign_id, name, idempotency_key)
    return await _answer(conn, user, stored, 201)


@router.get(
    "/{campaign_id}/shares", operation_id="list_campaign_shares", response_model=list[SharePublic]
)
async def list_campaign_shares(
    campaign_id: uuid.UUID, user: CurrentUser, conn: Conn
) -> list[SharePublic]:
    rows = await commands.campaign_shares(conn, user, campaign_id)
    return [SharePublic(user_id=r["user_id"], email=r["email"]) for r in rows]


@router.post(
    "/{campaign_id}/shares",
    operation_id="share_campaign",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
async def share_campaign(
    campaign_id: uuid.UUID, body: ShareCreate, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Response:
    """Share with a user (by email): a member may then read and change the campaign, a
    viewer read it. Only the owner (or an admin) shares."""
    await commands.share_campaign(ctx, conn, user, campaign_id, body.email)
    return NO_CONTENT()


@router.delete(
    "/{campaign_id}/shares/{user_id}",
    operation_id="unshare_campaign",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
async def unshare_campaign(
    campaign_id: uuid.UUID, user_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Response:
    await commands.unshare_campaign(ctx, conn, user, campaign_id, user_id)
    return NO_CONTENT()
