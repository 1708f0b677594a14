"""What happened after sending: campaign stats, opens, clicks, bounces and replies, and
every recipient's outcome as CSV."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from pigeon_api.commands.loading import campaign_row
from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.exports import results_csv
from pigeon_api.paging import fetch_page
from pigeon_api.schemas.common import Page
from pigeon_api.schemas.engagement import (
    CampaignStats,
    ClickPublic,
    DeliveryEventPublic,
    DeliveryKind,
    LinkStats,
    OpenPublic,
)
from pigeon_common.domain.access import Action

router = APIRouter(prefix="/campaigns/{campaign_id}", tags=["engagement"])


def rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


@router.get("/stats", operation_id="campaign_stats", response_model=CampaignStats)
async def campaign_stats(campaign_id: uuid.UUID, user: CurrentUser, conn: Conn) -> CampaignStats:
    """The campaign's numbers: outcomes, unique opens and clicks (people and machines
    apart), bounces (hard, soft, per reason), delays, replies, unsubscribes, rates, and per
    link."""
    await campaign_row(conn, user, campaign_id, Action.CAMPAIGN_VIEW)
    row = dict((await conn.fetchrow(SQL.campaign_stats, campaign_id)).items())
    links = [LinkStats(**dict(r.items())) for r in await conn.fetch(SQL.link_stats, campaign_id)]
    reasons = await conn.fetch(SQL.campaign_bounce_reasons, campaign_id)
    bounced = row["bounced_hard"] + row["bounced_soft"]
    delivered = max(row["sent"] - bounced, 0)
    return CampaignStats(
        campaign_id=campaign_id,
        delivered=delivered,
        bounced=bounced,
        open_rate=rate(row["opened_human"], delivered),
        click_rate=rate(row["clicked_human"], delivered),
        links=links,
        bounce_reasons={r["reason"]: r["recipients"] for r in reasons},
        **row,
    )


@router.get("/opens", operation_id="list_opens", response_model=Page[OpenPublic])
async def list_opens(
    campaign_id: uuid.UUID,
    user: CurrentUser,
    conn: Conn,
    recipient_id: uuid.UUID | None = Query(None),
    machine: bool | None = Query(None),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Page[OpenPublic]:
    """Every fetch of the open pixel, newest first (`machine` filters people or machines)."""
    await campaign_row(conn, user, campaign_id, Action.CAMPAIGN_VIEW)
    filters = (campaign_id, recipient_id, machine)
    return await fetch_page(
        conn, OpenPublic, SQL.list_opens, SQL.count_opens, filters, limit, offset
    )


@router.get("/clicks", operation_id="list_clicks", response_model=Page[ClickPublic])
async def list_clicks(
    campaign_id: uuid.UUID,
    user: CurrentUser,
    conn: Conn,
    recipient_id: uuid.UUID | None = Query(None),
    machine: bool | None = Query(None),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Page[ClickPublic]:
    """Every followed link, newest first."""
    await campaign_row(conn, user, campaign_id, Action.CAMPAIGN_VIEW)
    filters = (campaign_id, recipient_id, machine)
    return await fetch_page(
        conn, ClickPublic, SQL.list_clicks, SQL.count_clicks, filters, limit, offset
    )


@router.get(
    "/delivery-events",
    operation_id="list_delivery_events",
    response_model=Page[DeliveryEventPublic],
)
async def list_delivery_events(
    campaign_id: uuid.UUID,
    user: CurrentUser,
    conn: Conn,
    recipient_id: uuid.UUID | None = Query(None),
    kind: DeliveryKind | None = Query(None),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Page[DeliveryEventPublic]:
    """Bounces, delays, replies and auto-replies read from the mailbox, newest first."""
    await campaign_row(conn, user, campaign_id, Action.CAMPAIGN_VIEW)
    return await fetch_page(
        conn,
        DeliveryEventPublic,
        SQL.list_delivery_events,
        SQL.count_delivery_events,
        (campaign_id, recipient_id, kind),
        limit,
        offset,
    )


@router.get(
    "/messages/export",
    operation_id="export_messages",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_messages(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> StreamingResponse:
    """Every recipient with its outcome and what followed, as CSV (one row each)."""
    await campaign_row(conn, user, campaign_id, Action.CAMPAIGN_VIEW)
    return results_csv(ctx, campaign_id)
