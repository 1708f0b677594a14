"""Users and personal access tokens (kept in the API's own table, not in events)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query, Request, status

from pigeon_api.commands import users as commands
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.errors import ApiError
from pigeon_api.login_guard import LoginThrottled
from pigeon_api.responses import READ_ERRORS, WRITE_ERRORS, _errors
from pigeon_api.schemas.common import Page
from pigeon_api.schemas.users import (
    PasswordChange,
    PasswordReset,
    RoleChange,
    TokenPublic,
    TokenRequest,
    UserCreate,
    UserPublic,
)
from pigeon_common.domain.access import Role

router = APIRouter(tags=["users"])


def _public(row: Any) -> UserPublic:
    role = Role(row["role"])
    return UserPublic(
        id=row["id"],
        email=row["email"],
        role=role,
        is_admin=role is Role.ADMIN,
        created_at=row["created_at"],
    )


def _tokens(tokens: commands.Tokens) -> TokenPublic:
    return TokenPublic(token=tokens.read_write, read_only_token=tokens.read_only)


@router.post(
    "/auth/token",
    operation_id="create_token",
    response_model=TokenPublic,
    responses=_errors(401, 422, 429, 503),
)
async def create_token(body: TokenRequest, request: Request, ctx: Ctx, conn: Conn) -> TokenPublic:
    """Exchange an email and password for the user's two personal access tokens: `token`
    (read-write) and `read_only_token`. Failed attempts are throttled per email and per
    client address (429 with Retry-After)."""
    client = request.client.host if request.client else ""
    try:
        row = await commands.sign_in(ctx, conn, body.email, body.password, client)
    except LoginThrottled as exc:
        raise throttled(exc) from None
    if row is None:
        raise ApiError(401, "unauthorized", "wrong email or password")
    return _tokens(commands.tokens_of(ctx, row))


def throttled(exc: LoginThrottled) -> ApiError:
    return ApiError(
        429, "too_many_requests", str(exc), headers={"Retry-After": str(exc.retry_after)}
    )


@router.get("/users/me", operation_id="get_me", response_model=UserPublic, responses=READ_ERRORS)
async def get_me(user: CurrentUser, conn: Conn) -> UserPublic:
    return _public(await commands.me(conn, user))


@router.get(
    "/users/me/tokens",
    operation_id="get_my_tokens",
    response_model=TokenPublic,
    responses=READ_ERRORS,
)
async def get_my_tokens(user: CurrentUser, ctx: Ctx, conn: Conn) -> TokenPublic:
    """The caller's tokens; asked with the read-only token, only that one is shown."""
    return _tokens(await commands.my_tokens(ctx, conn, user))


@router.post(
    "/users/me/password",
    operation_id="change_password",
    response_model=TokenPublic,
    responses=WRITE_ERRORS,
)
async def change_password(
    body: PasswordChange, user: CurrentUser, ctx: Ctx, conn: Conn
) -> TokenPublic:
    """Change the password; every earlier token and admin session stops working and the
    new tokens are returned."""
    tokens = await commands.change_password(
        ctx, conn, user, body.current_password, body.new_password
    )
    return _tokens(tokens)


@router.post(
    "/users/me/tokens/revoke",
    operation_id="revoke_tokens",
    response_model=TokenPublic,
    responses=WRITE_ERRORS,
)
async def revoke_tokens(user: CurrentUser, ctx: Ctx, conn: Conn) -> TokenPublic:
    """Revoke both tokens of the current user; returns the ones that replace them."""
    return _tokens(await commands.rotate_tokens(ctx, conn, user))


@router.get(
    "/users", operation_id="list_users", response_model=Page[UserPublic], responses=READ_ERRORS
)
async def list_users(
    user: CurrentUser,
    conn: Conn,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Page[UserPublic]:
    """Every user (administrators only)."""
    rows, count = await commands.list_users(conn, user, limit, offset)
    return Page(data=[_public(r) for r in rows], count=count)


@router.post(
    "/users",
    operation_id="create_user",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE_ERRORS,
)
async def create_user(body: UserCreate, user: CurrentUser, conn: Conn) -> UserPublic:
    """Create a user (administrators only) with a role: admin, member or viewer."""
    role = Role.ADMIN if body.is_admin else body.role
    return _public(await commands.create_user(conn, user, body.email, body.password, role))


@router.post(
    "/users/{user_id}/role",
    operation_id="set_user_role",
    response_model=UserPublic,
    responses=WRITE_ERRORS,
)
async def set_user_role(
    user_id: uuid.UUID, body: RoleChange, user: CurrentUser, conn: Conn
) -> UserPublic:
    return _public(await commands.set_role(conn, user, user_id, body.role))


@router.post(
    "/users/{user_id}/password",
    operation_id="reset_user_password",
    response_model=UserPublic,
    responses=WRITE_ERRORS,
)
async def reset_user_password(
    user_id: uuid.UUID, body: PasswordReset, user: CurrentUser, conn: Conn
) -> UserPublic:
    """Set a user's password (administrators only); its tokens and sessions end."""
    return _public(await commands.reset_password(conn, user, user_id, body.password))
