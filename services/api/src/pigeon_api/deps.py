"""Request dependencies: the context, a database connection and the calling actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pigeon_api.context import SQL, ApiContext
from pigeon_api.errors import ApiError
from pigeon_common.auth import parse_token
from pigeon_common.domain.access import Actor, Role

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


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def current_actor(
    ctx: Ctx,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """The caller, its role and its token's scope (what it may do is the domain's call)."""
    if credentials is None:
        raise _unauthorized("missing bearer token (Authorization: Bearer pgn_...)")
    claim = parse_token(credentials.credentials)
    if claim is None:
        raise _unauthorized("malformed token")
    row = await conn.fetchrow(SQL.user_by_id, claim.user_id)
    if row is None or not ctx.signer.verify(claim, row["token_epoch"], row["password_hash"]):
        raise _unauthorized("invalid, revoked or rotated token")
    return Actor(row["id"], Role(row["role"]), claim.scope, row["email"])


CurrentUser = Annotated[Actor, Depends(current_actor)]
