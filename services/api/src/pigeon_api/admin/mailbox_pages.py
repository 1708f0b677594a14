"""Mailbox pages: the list with each one's health, one mailbox (settings, sync state,
skipped mail), create and edit (passwords are write-only), test connection with the folder
pick, sync now, sharing. Handlers call `pigeon_api.commands`; the rules live there."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pigeon_api.admin.deps import Admin, AdminState, actor_of, uuid_or_404, visible
from pigeon_api.admin.forms import (
    FormErrors,
    optional_int,
    parse_model,
    rule_errors,
    text,
)
from pigeon_api.admin.permissions import general_permissions, mailbox_permissions
from pigeon_api.admin.templating import render
from pigeon_api.commands import mailboxes as commands
from pigeon_api.commands.connection import try_connection
from pigeon_api.commands.loading import mailbox_config, mailbox_row
from pigeon_api.commands.sync import sync_now
from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx
from pigeon_api.schemas.mailboxes import MailboxCreate, MailboxUpdate
from pigeon_common import events as ev
from pigeon_common.domain.access import Action, Kind, authorize, list_scope
from pigeon_common.domain.errors import RuleError

router = APIRouter()
SIDES = ("smtp", "imap")
SECURITIES = ("plain", "starttls", "tls")
APPEND_MODES = ("auto", "always", "never")
TOP_FIELDS = ("name", "from_name", "from_address", "sent_folder", "bounce_folder")
RATE_FIELDS = ("rate_per_second", "rate_per_hour", "rate_per_day")


def _form_values(form: dict[str, str]) -> dict[str, Any]:
    """The form as the REST body's shape (a blank password: none given)."""
    values: dict[str, Any] = {name: text(form, name) for name in TOP_FIELDS}
    values["append_to_sent"] = text(form, "append_to_sent") or "auto"
    values |= {name: optional_int(form, name) for name in RATE_FIELDS}  # blank: no limit
    for side in SIDES:
        values[side] = {
            "host": text(form, f"{side}_host"),
            "port": optional_int(form, f"{side}_port"),
            "security": text(form, f"{side}_security"),
            "username": text(form, f"{side}_username"),
            "password": form.get(f"{side}_password", ""),
        }
    return values


def _row_values(row: Any) -> dict[str, Any]:
    config = mailbox_config(row)
    values: dict[str, Any] = config.model_dump(exclude={"smtp", "imap"})
    for side in SIDES:
        values[side] = {**getattr(config, side).model_dump(), "password": ""}
    values["smtp_password_set"] = bool(row["smtp_password_set"])
    values["imap_password_set"] = bool(row["imap_password_set"])
    return values


def _form_page(
    request: Request,
    values: dict[str, Any],
    errors: FormErrors,
    mailbox: Any = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "mailbox_form.html",
        status_code,
        values=values,
        errors=errors,
        m=mailbox,
        securities=SECURITIES,
        append_modes=APPEND_MODES,
    )


@router.get("/mailboxes")
async def mailboxes(request: Request, state: Admin, conn: Conn) -> Response:
    actor = actor_of(state)
    rows = await conn.fetch(SQL.admin_mailbox_health, *visible(list_scope(actor, Kind.MAILBOX)))
    return render(request, "mailboxes.html", rows=rows, may=general_permissions(actor))


@router.get("/mailboxes/new")
async def new_mailbox(request: Request, state: Admin) -> Response:
    authorize(actor_of(state), Action.MAILBOX_CREATE)
    blank = {"security": "starttls", "port": None, "host": "", "username": "", "password": ""}
    values: dict[str, Any] = {name: "" for name in TOP_FIELDS}
    values |= {"append_to_sent": "auto", "smtp": dict(blank), "imap": dict(blank)}
    values |= dict.fromkeys(RATE_FIELDS)
    return _form_page(request, values, FormErrors())


@router.post("/mailboxes/new")
async def create_mailbox(request: Request, state: Admin, ctx: Ctx, conn: Conn) -> Response:
    actor = actor_of(state)
    authorize(actor, Action.MAILBOX_CREATE)
    values = _form_values(state.form)
    body, errors = parse_model(MailboxCreate, values)
    if body is None:
        return _form_page(request, values, errors, status_code=422)
    config = ev.MailboxConfig(
        **body.model_dump(exclude={"smtp", "imap"}),
        smtp=ev.ServerEndpoint(**body.smtp.model_dump(exclude={"password"})),
        imap=ev.ServerEndpoint(**body.imap.model_dump(exclude={"password"})),
    )
    stored = await commands.create_mailbox(
        ctx, conn, actor, config, body.smtp.password, body.imap.password
    )
    return RedirectResponse(f"/admin/mailboxes/{stored.id}", 303)


async def _mailbox(conn: Conn, state: AdminState, mailbox_id: str, action: Action) -> Any:
    return await mailbox_row(conn, actor_of(state), uuid_or_404(mailbox_id), action)


@router.get("/mailboxes/{mailbox_id}")
async def mailbox(request: Request, state: Admin, conn: Conn, mailbox_id: str) -> Response:
    row = await _mailbox(conn, state, mailbox_id, Action.MAILBOX_VIEW)
    sync = await conn.fetch(SQL.imap_sync_state, row["id"])
    skipped = await conn.fetch(SQL.list_inbound_skipped, row["id"], 50, 0)
    may = mailbox_permissions(actor_of(state), row)
    shares = await conn.fetch(SQL.mailbox_shares, row["id"]) if may["share"] else []
    return render(
        request, "mailbox.html", m=row, sync=sync, skipped=skipped, may=may, shares=shares
    )


@router.get("/mailboxes/{mailbox_id}/edit")
async def edit_mailbox(request: Request, state: Admin, conn: Conn, mailbox_id: str) -> Response:
    row = await _mailbox(conn, state, mailbox_id, Action.MAILBOX_EDIT)
    return _form_page(request, _row_values(row), FormErrors(), row)


def _patch(values: dict[str, Any]) -> dict[str, Any]:
    """The update body: every field as given; a side's password only when typed."""
    body = {k: v for k, v in values.items() if k not in SIDES}
    for side in SIDES:
        # A blank field is left as it is (a blank password keeps the stored one).
        body[side] = {k: v for k, v in values[side].items() if v not in ("", None)}
    return body


@router.post("/mailboxes/{mailbox_id}/edit")
async def save_mailbox(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, mailbox_id: str
) -> Response:
    row = await _mailbox(conn, state, mailbox_id, Action.MAILBOX_EDIT)
    values = _form_values(state.form)
    body, errors = parse_model(MailboxUpdate, _patch(values))
    shown = {**values, "smtp_password_set": row["smtp_password_set"]}
    shown["imap_password_set"] = row["imap_password_set"]
    if body is None:
        return _form_page(request, shown, errors, row, 422)
    top = body.model_dump(exclude_unset=True, exclude={"smtp", "imap"})
    sides = {
        side: patch.model_dump(exclude_unset=True, exclude={"password"}) if patch else None
        for side, patch in (("smtp", body.smtp), ("imap", body.imap))
    }
    try:
        await commands.update_mailbox(
            ctx,
            conn,
            actor_of(state),
            row["id"],
            top,
            sides["smtp"],
            sides["imap"],
            body.smtp.password if body.smtp else None,
            body.imap.password if body.imap else None,
        )
    except RuleError as exc:
        if exc.kind != "invalid":
            raise
        return _form_page(request, shown, rule_errors(exc), row, 422)
    return RedirectResponse(f"/admin/mailboxes/{row['id']}", 303)


@router.post("/mailboxes/{mailbox_id}/test")
async def test_connection(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, mailbox_id: str
) -> Response:
    row = await _mailbox(conn, state, mailbox_id, Action.MAILBOX_SYNC)
    report = await try_connection(ctx, conn, actor_of(state), row["id"])
    may = mailbox_permissions(actor_of(state), row)
    return render(request, "connection.html", m=row, report=report, may=may)


@router.post("/mailboxes/{mailbox_id}/folders")
async def pick_folders(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, mailbox_id: str
) -> Response:
    """Store the Sent and bounce folders picked from the connection test's list."""
    row = await _mailbox(conn, state, mailbox_id, Action.MAILBOX_EDIT)
    picked = {name: text(state.form, name) for name in ("sent_folder", "bounce_folder")}
    body, errors = parse_model(MailboxUpdate, picked)
    if body is None:
        return render(
            request, "notice.html", 422, c=None, title="Folders not saved",
            message="; ".join(errors.by_field.values()),
        )  # fmt: skip
    top = body.model_dump(exclude_unset=True, exclude={"smtp", "imap"})
    await commands.update_mailbox(
        ctx, conn, actor_of(state), row["id"], top, None, None, None, None
    )
    return RedirectResponse(f"/admin/mailboxes/{row['id']}", 303)


@router.post("/mailboxes/{mailbox_id}/sync")
async def sync(request: Request, state: Admin, ctx: Ctx, conn: Conn, mailbox_id: str) -> Response:
    row = await _mailbox(conn, state, mailbox_id, Action.MAILBOX_SYNC)
    report = await sync_now(ctx, conn, actor_of(state), row["id"])
    return render(request, "sync_report.html", m=row, report=report)


@router.post("/mailboxes/{mailbox_id}/shares")
async def share(request: Request, state: Admin, ctx: Ctx, conn: Conn, mailbox_id: str) -> Response:
    mid = uuid_or_404(mailbox_id)
    await commands.share_mailbox(ctx, conn, actor_of(state), mid, text(state.form, "email"))
    return RedirectResponse(f"/admin/mailboxes/{mid}", 303)


@router.post("/mailboxes/{mailbox_id}/shares/{user_id}/delete")
async def unshare(
    request: Request, state: Admin, ctx: Ctx, conn: Conn, mailbox_id: str, user_id: str
) -> Response:
    mid = uuid_or_404(mailbox_id)
    await commands.unshare_mailbox(ctx, conn, actor_of(state), mid, uuid_or_404(user_id))
    return RedirectResponse(f"/admin/mailboxes/{mid}", 303)


@router.post("/mailboxes/{mailbox_id}/delete")
async def delete(request: Request, state: Admin, ctx: Ctx, conn: Conn, mailbox_id: str) -> Response:
    mid = uuid_or_404(mailbox_id)
    await commands.delete_mailbox(ctx, conn, actor_of(state), mid)
    return RedirectResponse("/admin/mailboxes", 303)
