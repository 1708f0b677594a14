"""Campaign operations: dry run, test send, send now, schedule, pause, resume, cancel,
status, and the per-recipient message list. Each route translates HTTP to a command of
`pigeon_api.commands.sending`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, status

from pigeon_api.commands import sending as commands
from pigeon_api.commands.loading import campaign_row
from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.paging import fetch_page
from pigeon_api.responses import READ_ERRORS, REMOTE_ERRORS, WRITE_ERRORS
from pigeon_api.schemas.common import Page
from pigeon_api.schemas.engagement import MessageState
from pigeon_api.schemas.sending import (
    CampaignStatusPublic,
    DryRunRequest,
    DryRunResult,
    MessagePublic,
    RenderedPublic,
    ScheduleRequest,
    SendRequest,
    SendStarted,
    TestSendRequest,
    TestSendResult,
)
from pigeon_common.domain.access import Action, Actor
from pigeon_common.domain.status import CampaignStatus, MessageStatus
from pigeon_common.render import RecipientSpec

router = APIRouter(prefix="/campaigns/{campaign_id}", tags=["sending"])


@router.post(
    "/dry-run", operation_id="dry_run_campaign", response_model=DryRunResult, responses=WRITE_ERRORS
)
async def dry_run_campaign(
    campaign_id: uuid.UUID,
    user: CurrentUser,
    ctx: Ctx,
    conn: Conn,
    body: DryRunRequest | None = None,
) -> DryRunResult:
    """Render the first `limit` recipients (or the given ones) exactly as they would be
    sent. Nothing is sent or appended. An undefined variable or a template escape is a
    422 naming the problem."""
    body = body or DryRunRequest()
    result = await commands.preview(ctx, conn, user, campaign_id, body.limit, body.recipient_ids)
    return DryRunResult(
        messages=[
            RenderedPublic(
                recipient_id=row["id"],
                email=row["email"],
                subject=m.subject,
                html=m.html,
                text=m.text,
                headers=m.headers,
            )
            for row, m in zip(result.rows, result.messages, strict=True)
        ],
        links=result.links,
    )


@router.post(
    "/test-send",
    operation_id="test_send_campaign",
    response_model=TestSendResult,
    responses=REMOTE_ERRORS,
)
async def test_send_campaign(
    campaign_id: uuid.UUID, body: TestSendRequest, user: CurrentUser, ctx: Ctx, conn: Conn
) -> TestSendResult:
    """Send one message of the campaign to one address now, through the campaign's
    mailbox. It does not count as a recipient and is not put in Sent."""
    recipient = RecipientSpec(uuid.uuid4(), body.email, body.name, body.attributes)
    sent = await commands.test_send(ctx, conn, user, campaign_id, recipient)
    return TestSendResult(email=sent.email, message_id=sent.message_id, smtp_reply=sent.smtp_reply)


@router.post(
    "/send",
    operation_id="send_campaign",
    response_model=SendStarted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=WRITE_ERRORS,
)
async def send_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn, body: SendRequest | None = None
) -> SendStarted:
    """Start sending now: the recipients are enqueued as chunk jobs of `batch_size`."""
    body = body or SendRequest()
    options = commands.send_options(ctx, body.batch_size, body.sleep_between_batches_sec)
    enqueued = await commands.send(ctx, conn, user, campaign_id, options)
    return SendStarted(
        campaign_id=campaign_id,
        run_id=enqueued.run_id,
        recipients=enqueued.recipients,
        chunks=enqueued.chunks,
        status=CampaignStatus.SENDING,
    )


@router.post(
    "/schedule",
    operation_id="schedule_campaign",
    response_model=CampaignStatusPublic,
    responses=WRITE_ERRORS,
)
async def schedule_campaign(
    campaign_id: uuid.UUID, body: ScheduleRequest, user: CurrentUser, ctx: Ctx, conn: Conn
) -> CampaignStatusPublic:
    """Send at `send_at` (with a time zone); a time in the past is refused."""
    options = commands.send_options(ctx, body.batch_size, body.sleep_between_batches_sec)
    await commands.schedule(ctx, conn, user, campaign_id, body.send_at, options)
    return await _status(conn, user, campaign_id)


@router.post(
    "/unschedule",
    operation_id="unschedule_campaign",
    response_model=CampaignStatusPublic,
    responses=WRITE_ERRORS,
)
async def unschedule_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> CampaignStatusPublic:
    await commands.unschedule(ctx, conn, user, campaign_id)
    return await _status(conn, user, campaign_id)


@router.post(
    "/pause",
    operation_id="pause_campaign",
    response_model=CampaignStatusPublic,
    responses=WRITE_ERRORS,
)
async def pause_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> CampaignStatusPublic:
    """Stop sending after the chunks in progress; resume carries on."""
    await commands.pause(ctx, conn, user, campaign_id)
    return await _status(conn, user, campaign_id)


@router.post(
    "/resume",
    operation_id="resume_campaign",
    response_model=CampaignStatusPublic,
    responses=WRITE_ERRORS,
)
async def resume_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> CampaignStatusPublic:
    """Enqueue again every recipient without an outcome (never one already sent to)."""
    await commands.resume(ctx, conn, user, campaign_id)
    return await _status(conn, user, campaign_id)


@router.post(
    "/cancel",
    operation_id="cancel_campaign",
    response_model=CampaignStatusPublic,
    responses=WRITE_ERRORS,
)
async def cancel_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> CampaignStatusPublic:
    await commands.cancel(ctx, conn, user, campaign_id)
    return await _status(conn, user, campaign_id)


async def _status(conn: Conn, actor: Actor, campaign_id: uuid.UUID) -> CampaignStatusPublic:
    found = await commands.sending_status(conn, actor, campaign_id)
    row = found.row
    return CampaignStatusPublic(
        campaign_id=campaign_id,
        status=row["status"],
        reason=row["status_reason"],
        send_at=row["send_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        recipients=row["recipients"],
        queued=found.queued,
        sent=row["sent"],
        failed=row["failed"],
        unknown=row["unknown"],
        suppressed=row["suppressed"],
        copies_pending=row["copies_pending"],
    )


@router.get(
    "/status",
    operation_id="campaign_status",
    response_model=CampaignStatusPublic,
    responses=READ_ERRORS,
)
async def campaign_status(
    campaign_id: uuid.UUID, user: CurrentUser, conn: Conn
) -> CampaignStatusPublic:
    return await _status(conn, user, campaign_id)


@router.get(
    "/messages",
    operation_id="list_messages",
    response_model=Page[MessagePublic],
    responses=READ_ERRORS,
)
async def list_messages(
    campaign_id: uuid.UUID,
    user: CurrentUser,
    conn: Conn,
    status: MessageStatus | None = Query(None),
    state: MessageState | None = Query(None),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Page[MessagePublic]:
    """Each recipient's outcome (`status`: queued, sent, failed, unknown, suppressed) and
    what followed; `state` keeps those opened, clicked, bounced, deferred, replied,
    auto-replied or unsubscribed (see MessageState)."""
    await campaign_row(conn, user, campaign_id, Action.CAMPAIGN_VIEW)
    return await fetch_page(
        conn,
        MessagePublic,
        SQL.list_messages,
        SQL.count_messages,
        (campaign_id, status, state),
        limit,
        offset,
    )
