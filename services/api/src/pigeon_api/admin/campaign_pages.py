"""Pages that read campaigns: dashboard, the list, one campaign with its numbers, its
recipients by state, one recipient's story, and the replies.

Every number comes from the counters and message states the projector keeps (migration
0008); no page counts messages. A recipient's story is read from the read models (the
recipient row, the outcome, every open, click, bounce, delay, reply and unsubscribe row),
which hold each of those events as the projector applied it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pigeon_api.admin.charts import cumulative_chart
from pigeon_api.admin.deps import Admin, AdminError, AdminState, actor_of, uuid_or_404, visible
from pigeon_api.admin.paging import PAGE_SIZE, blank_to_none, page_number, pager
from pigeon_api.admin.permissions import (
    campaign_permissions,
    general_permissions,
    mailbox_permissions,
    offered,
)
from pigeon_api.admin.templating import render
from pigeon_api.commands.loading import campaign_row
from pigeon_api.context import SQL
from pigeon_api.deps import Conn
from pigeon_common.domain.access import Action, Kind, list_scope

router = APIRouter()

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "paused", "done", "cancelled", "failed")
MESSAGE_STATUSES = ("queued", "sent", "failed", "unknown", "suppressed")
STATES = (
    "opened", "opened_human", "clicked", "clicked_human", "bounced", "bounced_hard",
    "bounced_soft", "deferred", "replied", "auto_replied", "unsubscribed",
)  # fmt: skip
LIVE_STATUSES = ("sending", "scheduled")


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


@dataclass(frozen=True)
class LoadedCampaign:
    """A campaign page's campaign: its row with numbers (`c`) and what the user may do."""

    c: Any
    may: dict[str, bool]
    offered: frozenset[str]


async def campaign_or_404(
    conn: Conn, state: AdminState, campaign_id: str, action: Action = Action.CAMPAIGN_VIEW
) -> LoadedCampaign:
    """The campaign with its numbers, once the access policy lets the user do `action`
    (another user's campaign is 404, like a missing one)."""
    cid = uuid_or_404(campaign_id)
    actor = actor_of(state)
    loaded = await campaign_row(conn, actor, cid, action)
    row = await conn.fetchrow(SQL.admin_campaign, cid)
    if row is None:
        raise AdminError(404, "No such campaign.")
    may = campaign_permissions(actor, loaded)
    may["sync"] = False
    if row["mailbox_id"] is not None:
        mailbox = await conn.fetchrow(SQL.mailbox_by_id, row["mailbox_id"])
        may["sync"] = mailbox is not None and mailbox_permissions(actor, mailbox)["sync"]
    return LoadedCampaign(row, may, offered(row["status"]))


@router.get("/")
async def dashboard(request: Request, state: Admin, conn: Conn) -> Response:
    actor = actor_of(state)
    campaigns = visible(list_scope(actor, Kind.CAMPAIGN))
    sending = await conn.fetch(SQL.admin_dashboard_sending, *campaigns)
    latest = await conn.fetch(SQL.admin_campaigns, None, None, 5, 0, *campaigns)
    mailboxes = await conn.fetch(
        SQL.admin_mailbox_health, *visible(list_scope(actor, Kind.MAILBOX))
    )
    return render(request, "dashboard.html", sending=sending, latest=latest, mailboxes=mailboxes)


async def _campaign_list(request: Request, state: AdminState, conn: Conn) -> dict[str, Any]:
    q = blank_to_none(request.query_params.get("q"))
    status = _choice(request.query_params.get("status"), CAMPAIGN_STATUSES)
    scope = visible(list_scope(actor_of(state), Kind.CAMPAIGN))
    count = await conn.fetchval(SQL.admin_count_campaigns, q, status, *scope)
    pages = pager(
        "/admin/campaigns",
        page_number(request.query_params.get("page")),
        count,
        {"q": q, "status": status},
    )
    rows = await conn.fetch(SQL.admin_campaigns, q, status, PAGE_SIZE, pages.offset, *scope)
    live = any(row["status"] in LIVE_STATUSES for row in rows)
    return {
        "rows": rows,
        "q": q or "",
        "status": status or "",
        "statuses": CAMPAIGN_STATUSES,
        "pager": pages,
        "live": live,
        "query": request.url.query,
        "may": general_permissions(actor_of(state)),
    }


@router.get("/campaigns")
async def campaigns(request: Request, state: Admin, conn: Conn) -> Response:
    return render(request, "campaigns.html", **await _campaign_list(request, state, conn))


@router.get("/campaigns/rows")
async def campaign_rows(request: Request, state: Admin, conn: Conn) -> Response:
    """The list's table body alone, for htmx polling while a campaign sends."""
    return render(
        request, "partials/campaign_rows.html", **await _campaign_list(request, state, conn)
    )


@router.get("/campaigns/{campaign_id}")
async def campaign(request: Request, state: Admin, conn: Conn, campaign_id: str) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id)
    row = loaded.c
    hours = await conn.fetch(SQL.admin_engagement_hours, row["id"])
    chart = cumulative_chart(
        [h["hour"] for h in hours],
        {
            "opened (people)": [h["opened_human"] for h in hours],
            "opened (all)": [h["opened"] for h in hours],
            "clicked (people)": [h["clicked_human"] for h in hours],
        },
        {"opened (people)": "s-open", "opened (all)": "s-all", "clicked (people)": "s-click"},
    )
    links = await conn.fetch(SQL.link_stats, row["id"])
    return render(
        request,
        "campaign.html",
        c=row,
        may=loaded.may,
        offered=loaded.offered,
        chart=chart,
        links=links,
        live=row["status"] in LIVE_STATUSES,
    )


@router.get("/campaigns/{campaign_id}/numbers")
async def campaign_numbers(
    request: Request, state: Admin, conn: Conn, campaign_id: str
) -> Response:
    """The numbers block alone, for htmx polling while the campaign sends."""
    row = (await campaign_or_404(conn, state, campaign_id)).c
    return render(request, "partials/numbers.html", c=row, live=row["status"] in LIVE_STATUSES)


@router.get("/campaigns/{campaign_id}/recipients")
async def recipients(request: Request, state: Admin, conn: Conn, campaign_id: str) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id)
    row = loaded.c
    params = request.query_params
    status = _choice(params.get("status"), MESSAGE_STATUSES)
    state_filter = _choice(params.get("state"), STATES)
    q = blank_to_none(params.get("q"))
    filters = (row["id"], status, state_filter, q)
    if q is None and (status is None) != (state_filter is None):
        # One filter alone: its count is a counter.
        count = row[status or state_filter or "recipients"] or 0
    elif q is None and status is None:
        count = row["recipients"] or 0
    else:
        count = await conn.fetchval(SQL.admin_count_messages, *filters)
    pages = pager(
        f"/admin/campaigns/{row['id']}/recipients",
        page_number(params.get("page")),
        count,
        {"status": status, "state": state_filter, "q": q},
    )
    messages = await conn.fetch(SQL.admin_messages, *filters, PAGE_SIZE, pages.offset)
    return render(
        request,
        "recipients.html",
        c=row,
        may=loaded.may,
        offered=loaded.offered,
        messages=messages,
        pager=pages,
        status=status or "",
        state_filter=state_filter or "",
        q=q or "",
        statuses=MESSAGE_STATUSES,
        states=STATES,
    )


@router.get("/campaigns/{campaign_id}/recipients/{recipient_id}")
async def story(
    request: Request, state: Admin, conn: Conn, campaign_id: str, recipient_id: str
) -> Response:
    row = (await campaign_or_404(conn, state, campaign_id)).c
    rid = uuid_or_404(recipient_id)
    message = await conn.fetchrow(SQL.admin_message, row["id"], rid)
    if message is None:
        raise AdminError(404, "No such recipient in this campaign.")
    events = await conn.fetch(SQL.admin_story, row["id"], rid)
    return render(request, "story.html", c=row, m=message, events=events)


@router.get("/campaigns/{campaign_id}/replies")
async def replies(request: Request, state: Admin, conn: Conn, campaign_id: str) -> Response:
    row = (await campaign_or_404(conn, state, campaign_id)).c
    human = await conn.fetch(SQL.admin_replies, row["id"], "replied", 200, 0)
    auto = await conn.fetch(SQL.admin_replies, row["id"], "auto_replied", 200, 0)
    return render(request, "replies.html", c=row, human=human, auto=auto)
