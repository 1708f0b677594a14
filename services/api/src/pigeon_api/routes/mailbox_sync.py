"""A mailbox's bounce-folder sync: where it stands, and "sync now" (asks imap-sync)."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Query
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.errors import ApiError
from pigeon_api.paging import fetch_page
from pigeon_api.routes.mailboxes import load_mailbox
from pigeon_api.schemas.common import Page
from pigeon_api.schemas.engagement import (
    MailboxSyncPublic,
    SkippedMailPublic,
    SyncReportPublic,
    SyncStatePublic,
)
from pigeon_common.connect_failure import FailureKind
from pigeon_common.jetstream import IMAP_SYNC_NOW_SUBJECT

router = APIRouter(prefix="/mailboxes/{mailbox_id}/sync", tags=["mailboxes"])

SYNC_NOW_TIMEOUT_SEC = 120.0


async def _mailbox(conn: Conn, mailbox_id: uuid.UUID) -> str:
    return str((await load_mailbox(conn, mailbox_id))["bounce_folder"])


@router.get("", operation_id="get_mailbox_sync", response_model=MailboxSyncPublic)
async def get_mailbox_sync(
    mailbox_id: uuid.UUID, _user: CurrentUser, conn: Conn
) -> MailboxSyncPublic:
    """How far the bounce folder was read, when, the last error, and how many mails were
    skipped (unparsed, or matching no message)."""
    folder = await _mailbox(conn, mailbox_id)
    states = await conn.fetch(SQL.imap_sync_state, mailbox_id)
    return MailboxSyncPublic(
        mailbox_id=mailbox_id,
        bounce_folder=folder,
        folders=[SyncStatePublic(**dict(r.items())) for r in states],
        skipped=await conn.fetchval(SQL.count_inbound_skipped, mailbox_id),
    )


@router.post("", operation_id="sync_mailbox_now", response_model=SyncReportPublic)
async def sync_mailbox_now(
    mailbox_id: uuid.UUID, _user: CurrentUser, ctx: Ctx, conn: Conn
) -> SyncReportPublic:
    """Read the bounce folder now and answer with what was found (the events are stored;
    the campaign numbers follow as soon as the projector applies them)."""
    if not await _mailbox(conn, mailbox_id):
        raise ApiError(409, "no_bounce_folder", "the mailbox has no bounce_folder to sync")
    nc = ctx.require().nc
    try:
        reply = await nc.request(
            IMAP_SYNC_NOW_SUBJECT,
            json.dumps({"mailbox_id": str(mailbox_id)}).encode(),
            timeout=SYNC_NOW_TIMEOUT_SEC,
        )
    except NoRespondersError:
        raise ApiError(503, "imap_sync_unavailable", "no imap-sync service is running") from None
    except NatsTimeoutError:
        raise ApiError(504, "imap_sync_timeout", "the sync did not finish in time") from None
    answer = json.loads(reply.data)
    if "refused" in answer:
        raise ApiError(409, "sync_refused", str(answer["refused"]))
    if "failed" in answer:
        raise ApiError(502, "sync_failed", f"imap-sync: {answer['failed']}")
    report = SyncReportPublic(**answer)
    if report.error:
        # imap-sync worded it: a connect failure names its kind and never echoes bytes
        # that are not IMAP (pigeon_common.connect_failure).
        kind = str(answer.get("error_kind") or "error")
        status = 422 if kind == FailureKind.DENIED else 502
        code = "mailbox_host_denied" if kind == FailureKind.DENIED else f"imap_{kind}"
        raise ApiError(status, code, report.error)
    return report


@router.get("/skipped", operation_id="list_skipped_mail", response_model=Page[SkippedMailPublic])
async def list_skipped_mail(
    mailbox_id: uuid.UUID,
    _user: CurrentUser,
    conn: Conn,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> Page[SkippedMailPublic]:
    """Mail of the bounce folder that could not be parsed or matched, newest first."""
    await _mailbox(conn, mailbox_id)
    return await fetch_page(
        conn,
        SkippedMailPublic,
        SQL.list_inbound_skipped,
        SQL.count_inbound_skipped,
        (mailbox_id,),
        limit,
        offset,
    )
