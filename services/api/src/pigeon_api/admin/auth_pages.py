"""Sign-in, sign-out and the signed-in user's own account page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pigeon_api.admin.deps import Admin, AdminState, Visitor, actor_of, user_of
from pigeon_api.admin.forms import parse_model
from pigeon_api.admin.security import CSRF_COOKIE
from pigeon_api.admin.sessions import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    close_session,
    close_user_sessions,
    open_session,
)
from pigeon_api.admin.templating import render
from pigeon_api.commands import users as user_commands
from pigeon_api.deps import Conn, Ctx
from pigeon_api.login_guard import LoginThrottled
from pigeon_api.schemas.users import PasswordChange
from pigeon_common.domain.access import Action, can
from pigeon_common.domain.errors import RuleError

router = APIRouter()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _with_csrf_cookie(request: Request, response: Response, state: Visitor) -> Response:
    if state.new_csrf_cookie is not None:
        response.set_cookie(
            CSRF_COOKIE,
            state.new_csrf_cookie,
            httponly=True,
            samesite="lax",
            secure=_secure(request),
            path="/admin",
        )
    return response


def _safe_next(value: str | None) -> str:
    # Only a path of this admin: never another site (open redirect).
    if value and value.startswith("/admin/") and not value.startswith("//"):
        return value
    return "/admin/"


@router.get("/login")
async def login_page(request: Request, state: Visitor, next: str | None = None) -> Response:
    if state.user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    page = render(request, "login.html", next=_safe_next(next), error=None)
    return _with_csrf_cookie(request, page, state)


@router.post("/login")
async def login(request: Request, state: Visitor, ctx: Ctx, conn: Conn) -> Response:
    email = state.form.get("email", "").strip()
    password = state.form.get("password", "")
    next_path = _safe_next(state.form.get("next"))
    client = request.client.host if request.client else ""
    try:  # the same throttle as POST /auth/token (per email and per client address)
        row = await user_commands.sign_in(ctx, conn, email, password, client) if email else None
    except LoginThrottled as exc:
        page = render(
            request, "login.html", 429, next=next_path,
            error=f"Too many failed sign-ins: try again in {exc.retry_after} seconds.",
        )  # fmt: skip
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if row is None:
        return render(request, "login.html", 401, next=next_path, error="Wrong email or password.")
    cookie = await open_session(conn, row["id"], row["password_hash"])
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/admin",
    )
    return response


@router.post("/logout")
async def logout(request: Request, state: Admin, conn: Conn) -> Response:
    await close_session(conn, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


async def _account_page(
    request: Request,
    state: AdminState,
    ctx: Ctx,
    conn: Conn,
    status_code: int = 200,
    message: str | None = None,
    error: str | None = None,
    tokens: user_commands.Tokens | None = None,
) -> Response:
    actor = actor_of(state)
    tokens = tokens or await user_commands.my_tokens(ctx, conn, actor)
    return render(
        request,
        "account.html",
        status_code,
        tokens=tokens,
        may_edit=can(actor, Action.ACCOUNT_EDIT),
        message=message,
        error=error,
    )


@router.get("/account")
async def account(request: Request, state: Admin, ctx: Ctx, conn: Conn) -> Response:
    return await _account_page(request, state, ctx, conn)


@router.post("/account/password")
async def change_password(request: Request, state: Admin, ctx: Ctx, conn: Conn) -> Response:
    values = {
        "current_password": state.form.get("current_password", ""),
        "new_password": state.form.get("new_password", ""),
    }
    body, errors = parse_model(PasswordChange, values)
    if body is None:
        error = "; ".join(errors.by_field.values())
        return await _account_page(request, state, ctx, conn, 422, error=error)
    try:
        await user_commands.change_password(
            ctx, conn, actor_of(state), body.current_password, body.new_password
        )
    except RuleError as exc:
        if exc.kind != "forbidden":
            raise
        error = "The current password is wrong."
        return await _account_page(request, state, ctx, conn, 403, error=error)
    # Every session of this user ends, this one too: sign in again with the new password.
    await close_user_sessions(conn, user_of(state).user_id)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


@router.post("/account/tokens/rotate")
async def rotate_tokens(request: Request, state: Admin, ctx: Ctx, conn: Conn) -> Response:
    tokens = await user_commands.rotate_tokens(ctx, conn, actor_of(state))
    message = "Tokens rotated: every older one is dead."
    return await _account_page(request, state, ctx, conn, message=message, tokens=tokens)
