"""Pages that read what is not a campaign: mailboxes (sync state, skipped mail),
suppressions and users."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pigeon_api.admin.deps import Admin, AdminError, require_admin, user_of, uuid_or_404
from pigeon_api.admin.paging import PAGE_SIZE, blank_to_none, page_number, pager
from pigeon_api.admin.templating import render
from pigeon_api.context import SQL
from pigeon_api.deps import Conn
from pigeon_common.validation import address_key

router = APIRouter()


@router.get("/mailboxes")
async def mailboxes(request: Request, state: Admin, conn: Conn) -> Response:
    rows = await conn.fetch(SQL.admin_mailbox_health)
    return render(request, "mailboxes.html", rows=rows)


@router.get("/mailboxes/{mailbox_id}")
async def mailbox(request: Request, state: Admin, conn: Conn, mailbox_id: str) -> Response:
    mid = uuid_or_404(mailbox_id)
    row = await conn.fetchrow(SQL.mailbox_by_id, mid)
    if row is None:
        raise AdminError(404, "No such mailbox.")
    sync = await conn.fetch(SQL.imap_sync_state, mid)
    skipped = await conn.fetch(SQL.list_inbound_skipped, mid, 50, 0)
    return render(request, "mailbox.html", m=row, sync=sync, skipped=skipped)


@router.get("/suppressions")
async def suppressions(request: Request, state: Admin, conn: Conn) -> Response:
    email = blank_to_none(request.query_params.get("email"))
    key = address_key(email) if email else None
    user = user_of(state)
    # Administrators see every row; others only those of the mailboxes they own.
    scope = (key, None, None, user.is_admin, user.user_id)
    count = await conn.fetchval(SQL.count_suppressions, *scope)
    pages = pager(
        "/admin/suppressions", page_number(request.query_params.get("page")), count,
        {"email": email},
    )  # fmt: skip
    rows = await conn.fetch(SQL.list_suppressions, *scope, PAGE_SIZE, pages.offset)
    return render(request, "suppressions.html", rows=rows, pager=pages, email=email or "")


@router.get("/users")
async def users(request: Request, state: Admin, conn: Conn) -> Response:
    require_admin(state)
    rows = await conn.fetch(SQL.list_users, 500, 0)
    return render(request, "users.html", rows=rows)
