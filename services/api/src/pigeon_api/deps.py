"""Request dependencies: the context, a database connection and the current user."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pigeon_api.context import SQL, ApiContext
from pigeon_api.errors import ApiError
from pigeon_common.auth import parse_token

_bearer = HTTPBearer(auto_error=False, description="Personal access token (`pgn_...`)")


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


async def connection(ctx: Ctx) -> AsyncIterator[Any]:
    conns = ctx.require()
    async with conns.pool.acquire() as conn:
        yield conn


Conn = Annotated[Any, Depends(connection)]


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    is_admin: bool


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    ctx: Ctx,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None:
        raise _unauthorized("missing bearer token (Authorization: Bearer pgn_...)")
    claim = parse_token(credentials.credentials)
    if claim is None:
        raise _unauthorized("malformed token")
    row = await conn.fetchrow(SQL.user_by_id, claim.user_id)
    if row is None or not ctx.signer.verify(claim, row["token_epoch"], row["password_hash"]):
        raise _unauthorized("invalid, revoked or rotated token")
    return User(id=row["id"], email=row["email"], is_admin=row["is_admin"])


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise ApiError(403, "forbidden", "only an administrator can do this")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
