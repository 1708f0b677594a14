"""Pages that change a campaign: the editor (create, edit) with its preview (the real dry
run for one recipient, in a sandboxed frame), dry run, test send, send live after a
confirmation, schedule, pause, resume, cancel, clone, delete, share, and CSV exports.

Each handler reads the form, calls the same command as the REST route, and renders the
result or the command's refusal next to the field; no rule lives here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pigeon_api.admin.campaign_pages import campaign_or_404
from pigeon_api.admin.deps import Admin, AdminError, AdminState, actor_of, uuid_or_404
from pigeon_api.admin.forms import (
    FormErrors,
    optional_int,
    optional_text,
    parse_model,
    rule_errors,
    text,
)
from pigeon_api.admin.preview import preview_headers
from pigeon_api.admin.templating import render
from pigeon_api.commands import campaigns as campaign_commands
from pigeon_api.commands import sending as sending_commands
from pigeon_api.commands.confirmation import send_summary
from pigeon_api.commands.loading import campaign_row
from pigeon_api.commands.mailboxes import list_mailboxes
from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx
from pigeon_api.exports import recipients_csv, results_csv
from pigeon_api.schemas.campaigns import CampaignCreate
from pigeon_api.schemas.sending import ScheduleRequest, SendRequest, TestSendRequest
from pigeon_common.domain.access import Action, Actor, authorize
from pigeon_common.domain.errors import RuleError
from pigeon_common.render import RecipientSpec

router = APIRouter()
MAILBOX_CHOICES = 500
PREVIEW_CHOICES = 50
DRY_RUN_ROWS = 20


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _campaign_url(campaign_id: uuid.UUID | str, rest: str = "") -> str:
    return f"/admin/campaigns/{campaign_id}{rest}"


async def _mailbox_choices(conn: Conn, actor: Actor) -> list[Any]:
    rows, _ = await list_mailboxes(conn, actor, MAILBOX_CHOICES, 0, usable=True)
    return rows


def _draft_values(form: dict[str, str]) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "subject": text(form, "subject"),
        "template_markdown": form.get("template_markdown", "").replace("\r\n", "\n"),
        "mailbox_id": optional_text(form, "mailbox_id"),
    }


async def _editor(
    request: Request,
    state: AdminState,
    conn: Conn,
    values: dict[str, Any],
    errors: FormErrors,
    campaign: Any = None,
    status_code: int = 200,
) -> Response:
    actor = actor_of(state)
    recipients: list[Any] = []
    if campaign is not None:
        recipients = list(await conn.fetch(SQL.admin_preview_recipients, campaign.c["id"], 50))
    return render(
        request,
        "editor.html",
        status_code,
        values=values,
        errors=errors,
        mailboxes=await _mailbox_choices(conn, actor),
        loaded=campaign,
        c=campaign.c if campaign is not None else None,
        may=campaign.may if campaign is not None else {},
        recipients=recipients,
    )


@router.get("/campaigns/new")
async def new_campaign(request: Request, state: Admin, conn: Conn) -> Response:
    authorize(actor_of(state), Action.CAMPAIGN_CREATE)
    values = {"name": "", "subject": "", "template_markdown": "", "mailbox_id": None}
    return await _editor(request, state, conn, values, FormErrors())


@router.post("/campaigns/new")
async def create_campaign(request: Request, state: Admin, ctx: Ctx, conn: Conn) -> Response:
    actor = actor_of(state)
    authorize(actor, Action.CAMPAIGN_CREATE)
    values = _draft_values(state.form)
    body, errors = parse_model(CampaignCreate, values)
    if body is None:
        return await _editor(request, state, conn, values, errors, status_code=422)
    try:
        stored = await campaign_commands.create_campaign(
            ctx, conn, actor, campaign_commands.CampaignDraft(**body.model_dump())
        )
    except RuleError as exc:
        if exc.kind != "invalid":
            raise
        return await _editor(request, state, conn, values, rule_errors(exc), status_code=422)
    return _back(_campaign_url(stored.id, "/edit"))


@router.get("/campaigns/{campaign_id}/edit")
async def edit_campaign(request: Request, state: Admin, conn: Conn, campaign_id: str) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id)
    c = loaded.c
    values = {
        "name": c["name"],
        "subject": c["subject"],
        "template_markdown": c["template_markdown"],
        "mailbox_id": str(c["mailbox_id"]) if c["mailbox_id"] else None,
    }
    return await _editor(request, state, conn, values, FormErrors(), loaded)


@router.post("/campaigns/{campaign_id}/edit")
async def save_campaign(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str
) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id, Action.CAMPAIGN_EDIT)
    values = _draft_values(state.form)
    body, errors = parse_model(CampaignCreate, values)
    if body is None:
        return await _editor(request, state, conn, values, errors, loaded, 422)
    try:
        await campaign_commands.update_campaign(
            ctx, conn, actor_of(state), loaded.c["id"], body.model_dump()
        )
    except RuleError as exc:
        if exc.kind not in ("invalid", "conflict"):
            raise
        return await _editor(request, state, conn, values, rule_errors(exc), loaded, 422)
    return _back(_campaign_url(loaded.c["id"], "/edit?saved=1"))


def _recipient_param(request: Request) -> list[uuid.UUID] | None:
    value = request.query_params.get("recipient")
    return [uuid_or_404(value)] if value else None


async def _rendered(
    request: Request, state: AdminState, ctx: Ctx, conn: Conn, campaign_id: uuid.UUID
) -> Any:
    """The dry run of the chosen recipient (or the first one): (row, message) or None."""
    found = await sending_commands.preview(
        ctx, conn, actor_of(state), campaign_id, 1, _recipient_param(request)
    )
    if not found.messages:
        return None
    return found.rows[0], found.messages[0]


@router.get("/campaigns/{campaign_id}/preview")
async def preview_page(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str
) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id, Action.CAMPAIGN_OPERATE)
    images = request.query_params.get("images") == "1"
    error: RuleError | None = None
    found = None
    try:
        found = await _rendered(request, state, ctx, conn, loaded.c["id"])
    except RuleError as exc:
        if exc.kind != "invalid":
            raise
        error = exc
    return render(
        request,
        "preview.html",
        200 if error is None else 422,
        c=loaded.c,
        may=loaded.may,
        row=found[0] if found else None,
        message=found[1] if found else None,
        error=error,
        images=images,
    )


@router.get("/campaigns/{campaign_id}/preview/html")
async def preview_html(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str
) -> Response:
    """The message's HTML alone, for the preview's sandboxed frame, under its own policy:
    no script at all; remote images (the open pixel among them) only when asked, so a
    preview is not counted as an open."""
    cid = uuid_or_404(campaign_id)
    await campaign_row(conn, actor_of(state), cid, Action.CAMPAIGN_OPERATE)
    found = await _rendered(request, state, ctx, conn, cid)
    if found is None:
        raise AdminError(404, "The campaign has no recipient to preview.")
    headers = preview_headers(remote_images=request.query_params.get("images") == "1")
    return Response(found[1].html, media_type="text/html; charset=utf-8", headers=headers)


@router.post("/campaigns/{campaign_id}/dry-run")
async def dry_run(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str
) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id, Action.CAMPAIGN_OPERATE)
    result = await sending_commands.preview(
        ctx, conn, actor_of(state), loaded.c["id"], DRY_RUN_ROWS
    )
    rows = list(zip(result.rows, result.messages, strict=True))
    return render(
        request, "dry_run.html", c=loaded.c, may=loaded.may, rows=rows, links=result.links
    )


@router.post("/campaigns/{campaign_id}/test-send")
async def test_send(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str
) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id, Action.CAMPAIGN_OPERATE)
    body, errors = parse_model(TestSendRequest, {"email": text(state.form, "email")})
    if body is None:
        raise AdminError(422, f"Test send: {errors.get('email') or 'check the address'}")
    recipient = RecipientSpec(uuid.uuid4(), body.email, body.name, body.attributes)
    sent = await sending_commands.test_send(ctx, conn, actor_of(state), loaded.c["id"], recipient)
    return render(
        request,
        "notice.html",
        c=loaded.c,
        title="Test message sent",
        message=f"Sent to {sent.email} ({sent.message_id}); the server said: {sent.smtp_reply}",
    )


@router.get("/campaigns/{campaign_id}/send")
async def confirm_send(request: Request, state: Admin, conn: Conn, campaign_id: str) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id, Action.CAMPAIGN_OPERATE)
    summary = await send_summary(conn, actor_of(state), loaded.c["id"])
    return render(request, "send.html", c=loaded.c, may=loaded.may, summary=summary)


def _send_values(form: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {"batch_size": optional_int(form, "batch_size")}
    sleep = text(form, "sleep_between_batches_sec")
    if sleep:
        try:
            values["sleep_between_batches_sec"] = float(sleep)
        except ValueError:
            values["sleep_between_batches_sec"] = sleep
    return values


def _invalid(errors: FormErrors) -> AdminError:
    detail = "; ".join(f"{k}: {v}" if k else v for k, v in errors.by_field.items())
    return AdminError(422, detail)


@router.post("/campaigns/{campaign_id}/send")
async def send(request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str) -> Response:
    """Enqueue every recipient in chunks of `batch_size` and start sending."""
    loaded = await campaign_or_404(conn, state, campaign_id, Action.CAMPAIGN_OPERATE)
    body, errors = parse_model(SendRequest, _send_values(state.form))
    if body is None:
        raise _invalid(errors)
    options = sending_commands.send_options(ctx, body.batch_size, body.sleep_between_batches_sec)
    await sending_commands.send(ctx, conn, actor_of(state), loaded.c["id"], options)
    return _back(_campaign_url(loaded.c["id"]))


def _send_at(value: str) -> datetime | str:
    """A `datetime-local` value, read as UTC (the page says so)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.post("/campaigns/{campaign_id}/schedule")
async def schedule(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str
) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id, Action.CAMPAIGN_OPERATE)
    values = {**_send_values(state.form), "send_at": _send_at(text(state.form, "send_at"))}
    body, errors = parse_model(ScheduleRequest, values)
    if body is None:
        raise _invalid(errors)
    options = sending_commands.send_options(ctx, body.batch_size, body.sleep_between_batches_sec)
    await sending_commands.schedule(
        ctx, conn, actor_of(state), loaded.c["id"], body.send_at, options
    )
    return _back(_campaign_url(loaded.c["id"]))


@router.post("/campaigns/{campaign_id}/shares")
async def share(request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str) -> Response:
    cid = uuid_or_404(campaign_id)
    await campaign_commands.share_campaign(
        ctx, conn, actor_of(state), cid, text(state.form, "email")
    )
    return _back(_campaign_url(cid, "/sharing"))


@router.post("/campaigns/{campaign_id}/shares/{user_id}/delete")
async def unshare(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str, user_id: str
) -> Response:
    cid = uuid_or_404(campaign_id)
    await campaign_commands.unshare_campaign(ctx, conn, actor_of(state), cid, uuid_or_404(user_id))
    return _back(_campaign_url(cid, "/sharing"))


@router.get("/campaigns/{campaign_id}/sharing")
async def sharing(request: Request, state: Admin, conn: Conn, campaign_id: str) -> Response:
    loaded = await campaign_or_404(conn, state, campaign_id)
    shares = await campaign_commands.campaign_shares(conn, actor_of(state), loaded.c["id"])
    return render(request, "sharing.html", c=loaded.c, may=loaded.may, shares=shares)


@router.get("/campaigns/{campaign_id}/export/recipients.csv")
async def export_recipients(state: Admin, ctx: Ctx, conn: Conn, campaign_id: str) -> Response:
    cid = uuid_or_404(campaign_id)
    await campaign_row(conn, actor_of(state), cid, Action.CAMPAIGN_VIEW)
    return await recipients_csv(ctx, conn, cid)


@router.get("/campaigns/{campaign_id}/export/results.csv")
async def export_results(state: Admin, ctx: Ctx, conn: Conn, campaign_id: str) -> Response:
    cid = uuid_or_404(campaign_id)
    await campaign_row(conn, actor_of(state), cid, Action.CAMPAIGN_VIEW)
    return results_csv(ctx, cid)


# Last: its path would take any fixed action path registered after it.
SIMPLE_OPERATIONS = {
    "unschedule": sending_commands.unschedule,
    "pause": sending_commands.pause,
    "resume": sending_commands.resume,
    "cancel": sending_commands.cancel,
}


@router.post("/campaigns/{campaign_id}/{operation}")
async def operate(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, campaign_id: str, operation: str
) -> Response:
    """Unschedule, pause, resume, cancel, clone or delete."""
    cid = uuid_or_404(campaign_id)
    actor = actor_of(state)
    if operation in SIMPLE_OPERATIONS:
        await SIMPLE_OPERATIONS[operation](ctx, conn, actor, cid)
        return _back(_campaign_url(cid))
    if operation == "clone":
        stored = await campaign_commands.clone_campaign(ctx, conn, actor, cid)
        return _back(_campaign_url(stored.id, "/edit"))
    if operation == "delete":
        await campaign_commands.delete_campaign(ctx, conn, actor, cid)
        return _back("/admin/campaigns")
    raise AdminError(404, "No such action.")
