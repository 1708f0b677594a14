"""Campaign commands: dry run, test send, send now, schedule, pause, resume, cancel,
status, and the per-recipient message list."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, status

from pigeon_api.connect_errors import connect_error
from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.errors import ApiError, template_error
from pigeon_api.paging import fetch_page
from pigeon_api.routes.campaigns import load_campaign
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
from pigeon_common import events as ev
from pigeon_common.campaigns import CampaignStatus
from pigeon_common.connect_failure import printable
from pigeon_common.render import (
    CampaignSpec,
    CompiledCampaign,
    RecipientSpec,
    TemplateError,
    compile_campaign,
    dry_run,
)
from pigeon_common.sending import NotSendableError, load_spec, resume_sending, start_sending
from pigeon_common.smtp import SmtpConnectError, SmtpEndpoint, SmtpSession
from pigeon_common.smtp_outcomes import Verdict

router = APIRouter(prefix="/campaigns/{campaign_id}", tags=["sending"])
CHECKED_AT_START = 20
MessageStatus = Literal["queued", "sent", "failed", "unknown", "suppressed"]


async def _spec(ctx: Ctx, conn: Conn, campaign_id: uuid.UUID) -> CampaignSpec:
    try:
        return await load_spec(conn, campaign_id, ctx.settings.tracking_base)
    except NotSendableError as exc:
        raise ApiError(422, "not_sendable", str(exc), field="mailbox_id") from None


def _compile(ctx: Ctx, spec: CampaignSpec) -> CompiledCampaign:
    try:
        return compile_campaign(spec, ctx.tracking)
    except TemplateError as exc:
        raise template_error(exc) from None


def _recipient(row: Any) -> RecipientSpec:
    return RecipientSpec(row["id"], row["email"], row["name"], row["attributes"])


@router.post("/dry-run", operation_id="dry_run_campaign", response_model=DryRunResult)
async def dry_run_campaign(
    campaign_id: uuid.UUID, body: DryRunRequest, _user: CurrentUser, ctx: Ctx, conn: Conn
) -> DryRunResult:
    """Render the first `limit` recipients (or the given ones) exactly as they would be
    sent. Nothing is sent or appended. An undefined variable or a template escape is a
    422 naming the problem."""
    await load_campaign(conn, campaign_id)
    spec = await _spec(ctx, conn, campaign_id)
    compiled = _compile(ctx, spec)
    if body.recipient_ids:
        rows = await conn.fetch(SQL.recipients_by_ids, campaign_id, body.recipient_ids)
    else:
        rows = await conn.fetch(SQL.first_recipients, campaign_id, body.limit)
    try:
        rendered = dry_run(compiled, [_recipient(r) for r in rows])
    except TemplateError as exc:
        raise template_error(exc) from None
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
            for row, m in zip(rows, rendered, strict=True)
        ],
        links=compiled.links,
    )


@router.post("/test-send", operation_id="test_send_campaign", response_model=TestSendResult)
async def test_send_campaign(
    campaign_id: uuid.UUID, body: TestSendRequest, _user: CurrentUser, ctx: Ctx, conn: Conn
) -> TestSendResult:
    """Send one message of the campaign to one address now, through the campaign's
    mailbox. It does not count as a recipient and is not put in Sent."""
    campaign = await load_campaign(conn, campaign_id)
    spec = await _spec(ctx, conn, campaign_id)
    compiled = _compile(ctx, spec)
    recipient = RecipientSpec(uuid.uuid4(), body.email, body.name, body.attributes)
    try:
        message = compiled.render(recipient)
    except TemplateError as exc:
        raise template_error(exc) from None
    mailbox = await conn.fetchrow(SQL.mailbox_for_send, campaign["mailbox_id"])
    session = SmtpSession(
        SmtpEndpoint(
            host=mailbox["smtp_host"],
            port=mailbox["smtp_port"],
            security=mailbox["smtp_security"],
            username=mailbox["smtp_username"],
            password=ctx.box.decrypt(mailbox["smtp_password"]),
            tls_context=ctx.settings.tls_context(),
            policy=ctx.settings.mailbox_host_policy(),
        )
    )
    try:
        outcome = await session.send(message.envelope_from, message.envelope_to, message.raw)
    except SmtpConnectError as exc:
        raise connect_error(exc.failure) from None
    finally:
        await session.close()
    if outcome.verdict is not Verdict.SENT:
        reply = printable(outcome.reply) or "no readable reply"
        raise ApiError(502, "smtp_error", f"SMTP server refused the message: {reply}")
    return TestSendResult(email=body.email, message_id=message.message_id, smtp_reply=outcome.reply)


def _options(ctx: Ctx, body: SendRequest) -> ev.SendOptions:
    return ev.SendOptions(
        batch_size=body.batch_size or ctx.settings.batch_size,
        sleep_between_batches_sec=float(
            body.sleep_between_batches_sec
            if body.sleep_between_batches_sec is not None
            else ctx.settings.sleep_between_batches_sec
        ),
    )


async def _checked_links(ctx: Ctx, conn: Conn, campaign_id: uuid.UUID) -> list[str]:
    """Compile and render the first recipients, so template errors stop the send here."""
    spec = await _spec(ctx, conn, campaign_id)
    compiled = _compile(ctx, spec)
    rows = await conn.fetch(SQL.first_recipients, campaign_id, CHECKED_AT_START)
    try:
        dry_run(compiled, [_recipient(r) for r in rows])
    except TemplateError as exc:
        raise template_error(exc) from None
    return compiled.links


def _require_status(row: Any, allowed: set[CampaignStatus], action: str) -> None:
    if row["status"] not in allowed:
        raise ApiError(409, "invalid_status", f"campaign is {row['status']}: cannot {action} it")


@router.post(
    "/send",
    operation_id="send_campaign",
    response_model=SendStarted,
    status_code=status.HTTP_202_ACCEPTED,
)
async def send_campaign(
    campaign_id: uuid.UUID, body: SendRequest, user: CurrentUser, ctx: Ctx, conn: Conn
) -> SendStarted:
    """Start sending now: the recipients are enqueued as chunk jobs of `batch_size`."""
    row = await load_campaign(conn, campaign_id)
    _require_status(row, {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED}, "send")
    links = await _checked_links(ctx, conn, campaign_id)
    conns = ctx.require()
    enqueued = await start_sending(
        conn,
        conns.js,
        campaign_id,
        _options(ctx, body),
        links,
        actor=str(user.id),
        wait_projected=ctx.wait_projected,
    )
    await ctx.wait_projected(enqueued.seq)
    return SendStarted(
        campaign_id=campaign_id,
        run_id=enqueued.run_id,
        recipients=enqueued.recipients,
        chunks=enqueued.chunks,
        status="sending",
    )


@router.post("/schedule", operation_id="schedule_campaign", response_model=CampaignStatusPublic)
async def schedule_campaign(
    campaign_id: uuid.UUID, body: ScheduleRequest, user: CurrentUser, ctx: Ctx, conn: Conn
) -> CampaignStatusPublic:
    """Send at `send_at` (with a time zone); a time in the past is refused."""
    row = await load_campaign(conn, campaign_id)
    _require_status(row, {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED}, "schedule")
    if body.send_at <= datetime.now(UTC):
        raise ApiError(422, "validation_error", "send_at: must be in the future", field="send_at")
    await _checked_links(ctx, conn, campaign_id)
    event = ev.CampaignScheduled(
        campaign_id=campaign_id, send_at=body.send_at, options=_options(ctx, body)
    )
    return await _transition(ctx, conn, campaign_id, event, user)


async def _transition(
    ctx: Ctx, conn: Conn, campaign_id: uuid.UUID, event: ev.Event, user: CurrentUser
) -> CampaignStatusPublic:
    await ctx.commit(ev.envelope_for(event, str(campaign_id), actor=str(user.id)))
    return await _status(conn, campaign_id)


@router.post("/unschedule", operation_id="unschedule_campaign", response_model=CampaignStatusPublic)
async def unschedule_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> CampaignStatusPublic:
    row = await load_campaign(conn, campaign_id)
    _require_status(row, {CampaignStatus.SCHEDULED}, "unschedule")
    return await _transition(
        ctx, conn, campaign_id, ev.CampaignUnscheduled(campaign_id=campaign_id), user
    )


@router.post("/pause", operation_id="pause_campaign", response_model=CampaignStatusPublic)
async def pause_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> CampaignStatusPublic:
    """Stop sending after the chunks in progress; resume carries on."""
    row = await load_campaign(conn, campaign_id)
    _require_status(row, {CampaignStatus.SENDING}, "pause")
    event = ev.CampaignPaused(campaign_id=campaign_id, reason=f"paused by {user.email}")
    return await _transition(ctx, conn, campaign_id, event, user)


@router.post("/resume", operation_id="resume_campaign", response_model=CampaignStatusPublic)
async def resume_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> CampaignStatusPublic:
    """Enqueue again every recipient without an outcome (never one already sent to)."""
    row = await load_campaign(conn, campaign_id)
    _require_status(row, {CampaignStatus.PAUSED}, "resume")
    conns = ctx.require()
    enqueued = await resume_sending(
        conn,
        conns.js,
        campaign_id,
        row["batch_size"] or ctx.settings.batch_size,
        str(user.id),
        wait_projected=ctx.wait_projected,
    )
    await ctx.wait_projected(enqueued.seq)
    return await _status(conn, campaign_id)


@router.post("/cancel", operation_id="cancel_campaign", response_model=CampaignStatusPublic)
async def cancel_campaign(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> CampaignStatusPublic:
    row = await load_campaign(conn, campaign_id)
    _require_status(
        row,
        {CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED},
        "cancel",
    )
    return await _transition(
        ctx, conn, campaign_id, ev.CampaignCancelled(campaign_id=campaign_id), user
    )


async def _status(conn: Conn, campaign_id: uuid.UUID) -> CampaignStatusPublic:
    row = await conn.fetchrow(SQL.campaign_status, campaign_id)
    done = row["sent"] + row["failed"] + row["unknown"] + row["suppressed"]
    queued = row["recipients"] - done if row["status"] in ("sending", "paused") else 0
    return CampaignStatusPublic(
        campaign_id=campaign_id,
        status=row["status"],
        reason=row["status_reason"],
        send_at=row["send_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        recipients=row["recipients"],
        queued=max(queued, 0),
        sent=row["sent"],
        failed=row["failed"],
        unknown=row["unknown"],
        suppressed=row["suppressed"],
    )


@router.get("/status", operation_id="campaign_status", response_model=CampaignStatusPublic)
async def campaign_status(
    campaign_id: uuid.UUID, _user: CurrentUser, conn: Conn
) -> CampaignStatusPublic:
    await load_campaign(conn, campaign_id)
    return await _status(conn, campaign_id)


@router.get("/messages", operation_id="list_messages", response_model=Page[MessagePublic])
async def list_messages(
    campaign_id: uuid.UUID,
    _user: CurrentUser,
    conn: Conn,
    status: MessageStatus | None = Query(None),
    state: MessageState | None = Query(None),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> Page[MessagePublic]:
    """Each recipient's outcome (`status`: queued, sent, failed, unknown, suppressed) and
    what followed; `state` keeps those opened, clicked, bounced, deferred, replied,
    auto-replied or unsubscribed (see MessageState)."""
    await load_campaign(conn, campaign_id)
    return await fetch_page(
        conn,
        MessagePublic,
        SQL.list_messages,
        SQL.count_messages,
        (campaign_id, status, state),
        limit,
        offset,
    )
