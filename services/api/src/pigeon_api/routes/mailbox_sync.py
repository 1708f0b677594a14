"""A mailbox's bounce-folder sync: where it stands, and "sync now" (asks imap-sync)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from pigeon_api.commands.loading import mailbox_row
from pigeon_api.commands.sync import sync_now
from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.paging import fetch_page
from pigeon_api.responses import READ_ERRORS, REMOTE_ERRORS
from pigeon_api.schemas.common import Page
from pigeon_api.schemas.engagement import (
    MailboxSyncPublic,
    SkippedMailPublic,
    SyncReportPublic,
    SyncStatePublic,
)
from pigeon_common.domain.access import Action

router = APIRouter(prefix="/mailboxes/{mailbox_id}/sync", tags=["mailboxes"])


@router.get(
    "", operation_id="get_mailbox_sync", response_model=MailboxSyncPublic, responses=READ_ERRORS
)
async def get_mailbox_sync(
    mailbox_id: uuid.UUID, user: CurrentUser, conn: Conn
) -> MailboxSyncPublic:
    """How far the bounce folder was read, when, the last error, and how many mails were
    skipped (unparsed, or matching no message)."""
    row = await mailbox_row(conn, user, mailbox_id, Action.MAILBOX_VIEW)
    states = await conn.fetch(SQL.imap_sync_state, mailbox_id)
    return MailboxSyncPublic(
        mailbox_id=mailbox_id,
        bounce_folder=row["bounce_folder"],
        folders=[SyncStatePublic(**dict(r.items())) for r in states],
        skipped=await conn.fetchval(SQL.count_inbound_skipped, mailbox_id),
    )


@router.post(
    "", operation_id="sync_mailbox_now", response_model=SyncReportPublic, responses=REMOTE_ERRORS
)
async def sync_mailbox_now(
    mailbox_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> SyncReportPublic:
    """Read the bounce folder now and answer with what was found (the events are stored;
    the campaign numbers follow as soon as the projector applies them). Only the
    mailbox's owner or an administrator may."""
    return SyncReportPublic(**await sync_now(ctx, conn, user, mailbox_id))


@router.get(
    "/skipped",
    operation_id="list_skipped_mail",
    response_model=Page[SkippedMailPublic],
    responses=READ_ERRORS,
)
async def list_skipped_mail(
    mailbox_id: uuid.UUID,
    user: CurrentUser,
    conn: Conn,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Page[SkippedMailPublic]:
    """Mail of the bounce folder that could not be parsed or matched, newest first."""
    await mailbox_row(conn, user, mailbox_id, Action.MAILBOX_VIEW)
    return await fetch_page(
        conn,
        SkippedMailPublic,
        SQL.list_inbound_skipped,
        SQL.count_inbound_skipped,
        (mailbox_id,),
        limit,
        offset,
    )
