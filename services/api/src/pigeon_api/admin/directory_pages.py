"""Suppressions (list, add, lift) and users (administrators: list, create, role, reset
password). Handlers call `pigeon_api.commands`; the rules live there."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pigeon_api.admin.deps import Admin, AdminState, actor_of, uuid_or_404
from pigeon_api.admin.forms import FormErrors, optional_text, parse_model, rule_errors, text
from pigeon_api.admin.paging import PAGE_SIZE, blank_to_none, page_number, pager
from pigeon_api.admin.templating import render
from pigeon_api.commands import suppressions as suppression_commands
from pigeon_api.commands import users as user_commands
from pigeon_api.commands.loading import resource_of
from pigeon_api.commands.mailboxes import list_mailboxes
from pigeon_api.deps import Conn, Ctx
from pigeon_api.schemas.sending import SuppressionCreate
from pigeon_api.schemas.users import PasswordReset, RoleChange, UserCreate
from pigeon_common.domain.access import EVERY_MAILBOX, Action, Kind, Role, can
from pigeon_common.domain.errors import RuleError

router = APIRouter()
USERS_SHOWN = 500
MAILBOX_CHOICES = 500


async def _suppressions_page(
    request: Request, state: AdminState, conn: Conn, errors: FormErrors, status_code: int = 200
) -> Response:
    actor = actor_of(state)
    email = blank_to_none(request.query_params.get("email"))
    count_rows = await suppression_commands.list_suppressions(conn, actor, email, None, None, 1, 0)
    pages = pager(
        "/admin/suppressions", page_number(request.query_params.get("page")), count_rows[1],
        {"email": email},
    )  # fmt: skip
    rows, _ = await suppression_commands.list_suppressions(
        conn, actor, email, None, None, PAGE_SIZE, pages.offset
    )
    owned, _ = await list_mailboxes(conn, actor, MAILBOX_CHOICES, 0)
    mailboxes = [
        m for m in owned if can(actor, Action.SUPPRESSIONS_EDIT, resource_of(Kind.MAILBOX, m))
    ]
    every_mailbox = can(actor, Action.SUPPRESSIONS_EDIT, EVERY_MAILBOX)
    return render(
        request,
        "suppressions.html",
        status_code,
        rows=rows,
        pager=pages,
        email=email or "",
        mailboxes=mailboxes,
        names={m["id"]: m["name"] for m in owned},
        errors=errors,
        every_mailbox=every_mailbox,
        editable={m["id"] for m in mailboxes} | ({None} if every_mailbox else set()),
    )


@router.get("/suppressions")
async def suppressions(request: Request, state: Admin, conn: Conn) -> Response:
    return await _suppressions_page(request, state, conn, FormErrors())


@router.post("/suppressions")
async def add_suppression(request: Request, state: Admin, ctx: Ctx, conn: Conn) -> Response:
    values = {
        "email": text(state.form, "email"),
        "mailbox_id": optional_text(state.form, "mailbox_id"),
        "detail": text(state.form, "detail"),
    }
    body, errors = parse_model(SuppressionCreate, values)
    if body is None:
        return await _suppressions_page(request, state, conn, errors, 422)
    await suppression_commands.add_suppression(
        ctx, conn, actor_of(state), body.email, body.mailbox_id, body.detail
    )
    return RedirectResponse("/admin/suppressions", 303)


@router.post("/suppressions/lift")
async def lift_suppression(request: Request, state: Admin, ctx: Ctx, conn: Conn) -> Response:
    mailbox = optional_text(state.form, "mailbox_id")
    await suppression_commands.lift_suppression(
        ctx,
        conn,
        actor_of(state),
        text(state.form, "email"),
        uuid_or_404(mailbox) if mailbox else None,
        optional_text(state.form, "reason"),
    )
    return RedirectResponse("/admin/suppressions", 303)


async def _users_page(
    request: Request,
    state: AdminState,
    conn: Conn,
    errors: FormErrors,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
    message: str | None = None,
) -> Response:
    rows, _ = await user_commands.list_users(conn, actor_of(state), USERS_SHOWN, 0)
    return render(
        request,
        "users.html",
        status_code,
        rows=rows,
        roles=[r.value for r in Role],
        errors=errors,
        values=values or {"email": "", "role": Role.MEMBER.value},
        message=message,
    )


@router.get("/users")
async def users(request: Request, state: Admin, conn: Conn) -> Response:
    return await _users_page(request, state, conn, FormErrors())


@router.post("/users")
async def create_user(request: Request, state: Admin, conn: Conn) -> Response:
    values = {
        "email": text(state.form, "email"),
        "password": state.form.get("password", ""),
        "role": text(state.form, "role") or Role.MEMBER.value,
    }
    shown = {"email": values["email"], "role": values["role"]}
    body, errors = parse_model(UserCreate, values)
    if body is None:
        return await _users_page(request, state, conn, errors, shown, 422)
    try:
        await user_commands.create_user(conn, actor_of(state), body.email, body.password, body.role)
    except RuleError as exc:
        if exc.kind != "conflict":
            raise
        return await _users_page(request, state, conn, rule_errors(exc), shown, 409)
    return RedirectResponse("/admin/users", 303)


@router.post("/users/{user_id}/role")
async def set_role(request: Request, state: Admin, conn: Conn, user_id: str) -> Response:
    body, errors = parse_model(RoleChange, {"role": text(state.form, "role")})
    if body is None:
        return await _users_page(request, state, conn, errors, status_code=422)
    try:
        await user_commands.set_role(conn, actor_of(state), uuid_or_404(user_id), body.role)
    except RuleError as exc:
        if exc.kind != "invalid":
            raise
        return await _users_page(request, state, conn, rule_errors(exc), status_code=422)
    return RedirectResponse("/admin/users", 303)


@router.post("/users/{user_id}/password")
async def reset_password(request: Request, state: Admin, conn: Conn, user_id: str) -> Response:
    body, errors = parse_model(PasswordReset, {"password": state.form.get("password", "")})
    if body is None:
        errors = FormErrors({f"reset-{user_id}": errors.get("password") or "invalid password"})
        return await _users_page(request, state, conn, errors, status_code=422)
    row = await user_commands.reset_password(
        conn, actor_of(state), uuid_or_404(user_id), body.password
    )
    message = f"The password of {row['email']} is reset; their sessions and tokens ended."
    return await _users_page(request, state, conn, FormErrors(), message=message)
