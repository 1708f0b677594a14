"""Users and personal access tokens (kept in the API's own table, not in events)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, status

from pigeon_api.context import SQL
from pigeon_api.deps import AdminUser, Conn, Ctx, CurrentUser
from pigeon_api.errors import ApiError
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


@router.post("/auth/token", operation_id="create_token", response_model=TokenPublic)
async def create_token(body: TokenRequest, ctx: Ctx, conn: Conn) -> TokenPublic:
    """Exchange an email and password for the user's personal access token."""
    row = await conn.fetchrow(SQL.user_by_email, body.email)
    if row is None or not verify_password(row["password_hash"], body.password):
        raise ApiError(401, "unauthorized", "wrong email or password")
    return _token(ctx, row)


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
