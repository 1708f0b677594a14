"""Campaigns: drafting, editing and deleting (sending comes with the sender service)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse

from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.errors import ApiError, not_found, template_error
from pigeon_api.schemas.campaigns import CampaignCreate, CampaignPublic, CampaignUpdate
from pigeon_api.schemas.common import Accepted, Page
from pigeon_common import events as ev
from pigeon_common.campaigns import CampaignLockedError, CampaignStatus, ensure_editable
from pigeon_common.render.errors import TemplateError, TemplateField
from pigeon_common.render.template import parse_source

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


def public(row: Any) -> CampaignPublic:
    return CampaignPublic(
        id=row["id"],
        name=row["name"],
        subject=row["subject"],
        template_markdown=row["template_markdown"],
        mailbox_id=row["mailbox_id"],
        status=row["status"],
        status_reason=row["status_reason"],
        send_at=row["send_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        recipient_count=row["recipient_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def load_campaign(conn: Conn, campaign_id: uuid.UUID) -> Any:
    row = await conn.fetchrow(SQL.campaign_by_id, campaign_id)
    if row is None:
        raise not_found("campaign")
    return row


def ensure_campaign_editable(row: Any, action: str) -> None:
    try:
        ensure_editable(row["status"], action)
    except CampaignLockedError as exc:
        raise ApiError(409, "campaign_locked", str(exc)) from None


def _check_templates(subject: str | None, template: str | None) -> None:
    """The checks the renderer makes of an author's template (syntax, the sandbox's static
    refusals, size, track_url arguments), made when the campaign is saved."""
    fields: tuple[tuple[TemplateField, str | None], ...] = (
        ("subject", subject),
        ("template_markdown", template),
    )
    for field, source in fields:
        if source is not None:
            try:
                parse_source(source, field)
            except TemplateError as exc:
                raise template_error(exc) from None


async def _check_mailbox(conn: Conn, mailbox_id: uuid.UUID | None) -> None:
    if mailbox_id is not None and await conn.fetchrow(SQL.mailbox_by_id, mailbox_id) is None:
        raise ApiError(422, "validation_error", "mailbox_id: no such mailbox", field="mailbox_id")


async def _answer(conn: Conn, campaign_id: uuid.UUID, projected: bool, code: int) -> Any:
    if not projected:
        return JSONResponse(Accepted(id=str(campaign_id)).model_dump(), status_code=202)
    row = await load_campaign(conn, campaign_id)
    return JSONResponse(public(row).model_dump(mode="json"), status_code=code)


@router.post(
    "",
    operation_id="create_campaign",
    response_model=CampaignPublic,
    status_code=status.HTTP_201_CREATED,
    responses={202: {"model": Accepted}},
)
async def create_campaign(body: CampaignCreate, user: CurrentUser, ctx: Ctx, conn: Conn) -> Any:
    _check_templates(body.subject, body.template_markdown)
    await _check_mailbox(conn, body.mailbox_id)
    campaign_id = uuid.uuid4()
    event = ev.CampaignCreated(campaign_id=campaign_id, **body.model_dump())
    projected = await ctx.commit(ev.envelope_for(event, str(campaign_id), actor=str(user.id)))
    return await _answer(conn, campaign_id, projected, 201)


@router.get("", operation_id="list_campaigns", response_model=Page[CampaignPublic])
async def list_campaigns(
    _user: CurrentUser,
    conn: Conn,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    status: CampaignStatus | None = Query(None),
) -> Page[CampaignPublic]:
    wanted = status.value if status else None
    rows = await conn.fetch(SQL.list_campaigns, limit, offset, wanted)
    count = await conn.fetchval(SQL.count_campaigns, wanted)
    return Page(data=[public(r) for r in rows], count=count)


@router.get("/{campaign_id}", operation_id="get_campaign", response_model=CampaignPublic)
async def get_campaign(campaign_id: uuid.UUID, _user: CurrentUser, conn: Conn) -> CampaignPublic:
    return public(await load_campaign(conn, campaign_id))


@router.patch(
    "/{campaign_id}",
    operation_id="update_campaign",
    response_model=CampaignPublic,
    responses={202: {"model": Accepted}, 409: {"description": "campaign has started sending"}},
)
async def update_campaign(
    campaign_id: uuid.UUID, body: CampaignUpdate, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Any:
    row = await load_campaign(conn, campaign_id)
    ensure_campaign_editable(row, "edited")
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "subject", "template_markdown"):
        if field in changes and changes[field] is None:
            raise ApiError(422, "validation_error", f"{field}: must not be null", field=field)
    _check_templates(changes.get("subject"), changes.get("template_markdown"))
    if "mailbox_id" in changes:
        await _check_mailbox(conn, changes["mailbox_id"])
    state = {f: row[f] for f in ("name", "subject", "template_markdown", "mailbox_id")}
    changed = sorted(f for f, v in changes.items() if state[f] != v)
    if not changed:
        return JSONResponse(public(row).model_dump(mode="json"))
    event = ev.CampaignUpdated(campaign_id=campaign_id, **{**state, **changes}, changed=changed)
    projected = await ctx.commit(ev.envelope_for(event, str(campaign_id), actor=str(user.id)))
    return await _answer(conn, campaign_id, projected, 200)


@router.delete(
    "/{campaign_id}",
    operation_id="delete_campaign",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={409: {"description": "campaign has started sending"}},
)
async def delete_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Response:
    row = await load_campaign(conn, campaign_id)
    ensure_campaign_editable(row, "deleted")
    event = ev.CampaignDeleted(campaign_id=campaign_id)
    await ctx.commit(ev.envelope_for(event, str(campaign_id), actor=str(user.id)))
    return Response(status_code=204)
