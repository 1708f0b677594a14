"""Users and personal access tokens (kept in the API's own table, not in events)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, status

from pigeon_api.context import SQL
from pigeon_api.deps import AdminUser, Conn, Ctx, CurrentUser
from pigeon_api.errors import ApiError, ErrorResponse
from pigeon_api.login_guard import LoginThrottled, check_login, password_matches, record_login
from pigeon_api.schemas.common import Page
from pigeon_api.schemas.users import (
    PasswordChange,
    TokenPublic,
    TokenRequest,
    UserCreate,
    UserPublic,
)
from pigeon_common.auth import hash_password, verify_password

router = APIRouter(tags=["users"])


def _public(row: Any) -> UserPublic:
    return UserPublic(
        id=row["id"], email=row["email"], is_admin=row["is_admin"], created_at=row["created_at"]
    )


def _token(ctx: Ctx, row: Any) -> TokenPublic:
    return TokenPublic(
        token=ctx.signer.token_for(row["id"], row["token_epoch"], row["password_hash"])
    )


@router.post(
    "/auth/token",
    operation_id="create_token",
    response_model=TokenPublic,
    responses={429: {"model": ErrorResponse, "description": "too many failed sign-ins"}},
)
async def create_token(body: TokenRequest, request: Request, ctx: Ctx, conn: Conn) -> TokenPublic:
    """Exchange an email and password for the user's personal access token. Failed
    attempts are throttled per email and per client address (429 with Retry-After)."""
    client = request.client.host if request.client else ""
    try:
        check_login(ctx.login, body.email, client)
    except LoginThrottled as exc:
        raise throttled(exc) from None
    row = await conn.fetchrow(SQL.user_by_email, body.email)
    ok = await password_matches(ctx.login, row["password_hash"] if row else None, body.password)
    record_login(ctx.login, body.email, client, ok=ok)
    if not ok:
        raise ApiError(401, "unauthorized", "wrong email or password")
    return _token(ctx, row)


def throttled(exc: LoginThrottled) -> ApiError:
    return ApiError(
        429, "too_many_requests", str(exc), headers={"Retry-After": str(exc.retry_after)}
    )


@router.get("/users/me", operation_id="get_me", response_model=UserPublic)
async def get_me(user: CurrentUser, conn: Conn) -> UserPublic:
    return _public(await conn.fetchrow(SQL.user_by_id, user.id))


@router.post("/users/me/password", operation_id="change_password", response_model=TokenPublic)
async def change_password(
    body: PasswordChange, user: CurrentUser, ctx: Ctx, conn: Conn
) -> TokenPublic:
    """Change the password; every earlier token stops working and the new one is returned."""
    row = await conn.fetchrow(SQL.user_by_id, user.id)
    if not verify_password(row["password_hash"], body.current_password):
        raise ApiError(403, "forbidden", "current_password is wrong", field="current_password")
    row = await conn.fetchrow(SQL.set_password, user.id, hash_password(body.new_password))
    return _token(ctx, row)


@router.post("/users/me/tokens/revoke", operation_id="revoke_tokens", response_model=TokenPublic)
async def revoke_tokens(user: CurrentUser, ctx: Ctx, conn: Conn) -> TokenPublic:
    """Revoke every token of the current user; returns the one that replaces them."""
    row = await conn.fetchrow(SQL.bump_token_epoch, user.id)
    return _token(ctx, row)


@router.get("/users", operation_id="list_users", response_model=Page[UserPublic])
async def list_users(_admin: AdminUser, conn: Conn) -> Page[UserPublic]:
    rows = await conn.fetch(SQL.list_users)
    return Page(data=[_public(r) for r in rows], count=len(rows))


@router.post(
    "/users",
    operation_id="create_user",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
)
async def create_user(body: UserCreate, _admin: AdminUser, conn: Conn) -> UserPublic:
    row = await conn.fetchrow(
        SQL.insert_user, uuid.uuid4(), body.email, hash_password(body.password), body.is_admin
    )
    if row is None:
        raise ApiError(409, "conflict", f"a user with email {body.email} exists", field="email")
    return _public(row)
