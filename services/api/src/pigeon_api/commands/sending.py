"""Campaign operations: dry run, test send, send now, schedule, pause, resume, cancel,
and the campaign's sending status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pigeon_api.commands.connect_errors import connect_error
from pigeon_api.commands.loading import campaign_for, campaign_row, campaign_state
from pigeon_api.commands.remote import RemoteError
from pigeon_api.commands.storing import store
from pigeon_api.context import SQL, ApiContext
from pigeon_common import events as ev
from pigeon_common.connect_failure import printable
from pigeon_common.domain import campaign as rules
from pigeon_common.domain.access import Action, Actor
from pigeon_common.domain.errors import Invalid
from pigeon_common.domain.status import IN_FLIGHT, CampaignStatus
from pigeon_common.render import (
    CampaignSpec,
    CompiledCampaign,
    RecipientSpec,
    RenderedMessage,
    TemplateError,
    compile_campaign,
    dry_run,
)
from pigeon_common.sending import (
    Enqueued,
    NotSendableError,
    load_spec,
    resume_sending,
    start_sending,
)
from pigeon_common.smtp import SmtpConnectError, SmtpEndpoint, SmtpSession
from pigeon_common.smtp_outcomes import Verdict
from pigeon_common.validation import InvalidAddressError

CHECKED_AT_START = 20


def _template_error(exc: TemplateError) -> Invalid:
    return Invalid("template_error", str(exc), field=exc.field)


async def _compiled(ctx: ApiContext, conn: Any, campaign_id: uuid.UUID) -> CompiledCampaign:
    try:
        spec: CampaignSpec = await load_spec(conn, campaign_id, ctx.settings.tracking_base)
    except NotSendableError as exc:
        raise Invalid("not_sendable", str(exc), field="mailbox_id") from None
    try:
        return compile_campaign(spec, ctx.tracking)
    except TemplateError as exc:
        raise _template_error(exc) from None
    except InvalidAddressError as exc:
        # Stored before addresses were checked as strictly as they are now.
        raise Invalid("invalid_address", f"the mailbox's sender: {exc}", "from_address") from None


def _unsendable(exc: InvalidAddressError) -> Invalid:
    """A stored recipient address that cannot be sent (kept from before the input rules
    refused it): 422 naming it, as the sender records it as failed."""
    return Invalid("invalid_address", f"a recipient cannot be sent to: {exc}", "email")


def _recipient(row: Any) -> RecipientSpec:
    return RecipientSpec(row["id"], row["email"], row["name"], row["attributes"])


@dataclass(frozen=True, slots=True)
class Preview:
    rows: list[Any]
    messages: list[RenderedMessage]
    links: list[str]


async def preview(
    ctx: ApiContext,
    conn: Any,
    actor: Actor,
    campaign_id: uuid.UUID,
    limit: int,
    recipient_ids: list[uuid.UUID] | None = None,
) -> Preview:
    """Render the first `limit` recipients (or the given ones) exactly as they would be
    sent; nothing is sent or appended."""
    await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_OPERATE)
    compiled = await _compiled(ctx, conn, campaign_id)
    if recipient_ids:
        rows = await conn.fetch(SQL.recipients_by_ids, campaign_id, recipient_ids)
    else:
        rows = await conn.fetch(SQL.first_recipients, campaign_id, limit)
    try:
        rendered = dry_run(compiled, [_recipient(r) for r in rows])
    except TemplateError as exc:
        raise _template_error(exc) from None
    except InvalidAddressError as exc:
        raise _unsendable(exc) from None
    return Preview(list(rows), rendered, compiled.links)


@dataclass(frozen=True, slots=True)
class TestSent:
    email: str
    message_id: str
    smtp_reply: str


async def test_send(
    ctx: ApiContext,
    conn: Any,
    actor: Actor,
    campaign_id: uuid.UUID,
    recipient: RecipientSpec,
) -> TestSent:
    """Send one message of the campaign to one address now, through its mailbox; it is
    no recipient and is not put in Sent."""
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_OPERATE)
    compiled = await _compiled(ctx, conn, campaign_id)
    try:
        message = compiled.render(recipient)
    except TemplateError as exc:
        raise _template_error(exc) from None
    except InvalidAddressError as exc:
        raise _unsendable(exc) from None
    mailbox = await conn.fetchrow(SQL.mailbox_for_send, state.mailbox_id)
    if mailbox is None:
        raise Invalid("not_sendable", "the campaign's mailbox has no credentials", "mailbox_id")
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
        raise RemoteError("smtp_error", f"SMTP server refused the message: {reply}")
    return TestSent(recipient.email, message.message_id, outcome.reply)


def send_options(ctx: ApiContext, batch_size: int | None, sleep: float | None) -> ev.SendOptions:
    return ev.SendOptions(
        batch_size=batch_size or ctx.settings.batch_size,
        sleep_between_batches_sec=float(
            sleep if sleep is not None else ctx.settings.sleep_between_batches_sec
        ),
    )


async def _checked_links(ctx: ApiContext, conn: Any, campaign_id: uuid.UUID) -> list[str]:
    """Compile and render the first recipients, so template errors stop the send here."""
    compiled = await _compiled(ctx, conn, campaign_id)
    rows = await conn.fetch(SQL.first_recipients, campaign_id, CHECKED_AT_START)
    try:
        dry_run(compiled, [_recipient(r) for r in rows])
    except TemplateError as exc:
        raise _template_error(exc) from None
    return compiled.links


async def send(
    ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID, options: ev.SendOptions
) -> Enqueued:
    """Start sending now: the recipients are enqueued as chunk jobs."""
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_OPERATE)
    # The rule first (a campaign already sending answers 409 before any rendering);
    # start_sending then decides again with the real counts.
    rules.decide(state, rules.StartSending(uuid.UUID(int=0), 0, 0, options, []))
    links = await _checked_links(ctx, conn, campaign_id)
    enqueued = await start_sending(
        conn,
        ctx.require().js,
        state,
        options,
        links,
        actor=str(actor.user_id),
        wait_projected=ctx.wait_projected,
    )
    await ctx.wait_projected(enqueued.seq)
    return enqueued


async def schedule(
    ctx: ApiContext,
    conn: Any,
    actor: Actor,
    campaign_id: uuid.UUID,
    send_at: datetime,
    options: ev.SendOptions,
) -> None:
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_OPERATE)
    events = rules.decide(state, rules.ScheduleCampaign(send_at, options, datetime.now(UTC)))
    await _checked_links(ctx, conn, campaign_id)
    await store(ctx, actor, campaign_id, events)


async def unschedule(ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID) -> None:
    await _simple(ctx, conn, actor, campaign_id, rules.UnscheduleCampaign())


async def pause(ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID) -> None:
    """Stop sending after the chunks in progress; resume carries on."""
    reason = f"paused by {actor.email or actor.user_id}"
    await _simple(ctx, conn, actor, campaign_id, rules.PauseCampaign(reason))


async def cancel(ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID) -> None:
    await _simple(ctx, conn, actor, campaign_id, rules.CancelCampaign())


async def _simple(
    ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID, command: rules.Command
) -> None:
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_OPERATE)
    await store(ctx, actor, campaign_id, rules.decide(state, command))


async def resume(ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID) -> Enqueued:
    """Enqueue again every recipient without an outcome (never one already sent to)."""
    row = await campaign_row(conn, actor, campaign_id, Action.CAMPAIGN_OPERATE)
    rules.decide(campaign_state(row), rules.ResumeCampaign(uuid.UUID(int=0), 0))
    enqueued = await resume_sending(
        conn,
        ctx.require().js,
        campaign_id,
        row["batch_size"] or ctx.settings.batch_size,
        str(actor.user_id),
        wait_projected=ctx.wait_projected,
    )
    await ctx.wait_projected(enqueued.seq)
    return enqueued


@dataclass(frozen=True, slots=True)
class SendingStatus:
    row: Any
    queued: int


async def sending_status(conn: Any, actor: Actor, campaign_id: uuid.UUID) -> SendingStatus:
    await campaign_row(conn, actor, campaign_id, Action.CAMPAIGN_VIEW)
    row = await conn.fetchrow(SQL.campaign_status, campaign_id)
    done = row["sent"] + row["failed"] + row["unknown"] + row["suppressed"]
    in_flight = CampaignStatus(row["status"]) in IN_FLIGHT
    return SendingStatus(row, max(row["recipients"] - done, 0) if in_flight else 0)
