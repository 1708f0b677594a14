"""Sign-in, sign-out and the signed-in user's own account page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pigeon_api.admin.deps import Admin, AdminError, Visitor, user_of
from pigeon_api.admin.security import CSRF_COOKIE
from pigeon_api.admin.sessions import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    close_session,
    close_user_sessions,
    open_session,
)
from pigeon_api.admin.templating import render
from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx
from pigeon_common.auth import hash_password, verify_password

router = APIRouter()
MIN_PASSWORD = 8


def check_admin_login(ctx: Ctx, email: str, client: str) -> bool:
    """Sign-in throttle hook: False refuses the attempt. The API's login throttle for
    POST /auth/token (`check_login`) is not on main yet; wire it in here when it lands."""
    return True


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
    if not check_admin_login(ctx, email, client):
        return render(
            request, "login.html", 429, next=next_path, error="Too many attempts; wait a minute."
        )
    row = await conn.fetchrow(SQL.user_by_email, email) if email else None
    if row is None or not verify_password(row["password_hash"], password):
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


@router.get("/account")
async def account(request: Request, state: Admin, ctx: Ctx) -> Response:
    user = user_of(state)
    token = ctx.signer.token_for(user.user_id, user.token_epoch, user.password_hash)
    return render(request, "account.html", token=token, message=None, error=None)


@router.post("/account/password")
async def change_password(request: Request, state: Admin, ctx: Ctx, conn: Conn) -> Response:
    user = user_of(state)
    current = state.form.get("current_password", "")
    new = state.form.get("new_password", "")
    token = ctx.signer.token_for(user.user_id, user.token_epoch, user.password_hash)
    if not verify_password(user.password_hash, current):
        return render(
            request,
            "account.html",
            403,
            token=token,
            message=None,
            error="The current password is wrong.",
        )
    if len(new) < MIN_PASSWORD:
        return render(
            request,
            "account.html",
            422,
            token=token,
            message=None,
            error=f"The new password needs at least {MIN_PASSWORD} characters.",
        )
    await conn.fetchrow(SQL.set_password, user.user_id, hash_password(new))
    # Every session of this user ends, this one too: sign in again with the new password.
    await close_user_sessions(conn, user.user_id)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


@router.post("/account/tokens/rotate")
async def rotate_tokens(request: Request, state: Admin, ctx: Ctx, conn: Conn) -> Response:
    user = user_of(state)
    if not state.can_write:
        raise AdminError(403, "Your role cannot rotate tokens.")
    row = await conn.fetchrow(SQL.bump_token_epoch, user.user_id)
    token = ctx.signer.token_for(row["id"], row["token_epoch"], row["password_hash"])
    return render(
        request,
        "account.html",
        token=token,
        message="Tokens rotated: every older one is dead.",
        error=None,
    )
