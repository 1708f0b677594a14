"""User and token commands: sign-in, one's own account, and the administrators' user
management. Users live in the API's own table, not in events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pigeon_api.context import SQL, ApiContext
from pigeon_api.login_guard import check_login, password_matches, record_login
from pigeon_common.auth import hash_password, verify_password
from pigeon_common.domain.access import Action, Actor, Role, Scope, authorize
from pigeon_common.domain.errors import Conflict, Forbidden, Invalid, NotFound


@dataclass(frozen=True, slots=True)
class Tokens:
    """A user's two personal access tokens. `read_write` is None when shown to a
    read-only token (it must not lead to the stronger one)."""

    read_write: str | None
    read_only: str


def tokens_of(ctx: ApiContext, row: Any, scope: Scope = Scope.WRITE) -> Tokens:
    args = (row["id"], row["token_epoch"], row["password_hash"])
    read_only = ctx.signer.token_for(*args, scope=Scope.READ)
    read_write = ctx.signer.token_for(*args) if scope is Scope.WRITE else None
    return Tokens(read_write, read_only)


async def sign_in(ctx: ApiContext, conn: Any, email: str, password: str, client: str) -> Any:
    """The user's row for a right email and password, else None; raises LoginThrottled
    when this email or client failed too often (every sign-in surface calls this)."""
    check_login(ctx.login, email, client)
    row = await conn.fetchrow(SQL.user_by_email, email)
    ok = await password_matches(ctx.login, row["password_hash"] if row else None, password)
    record_login(ctx.login, email, client, ok=ok)
    return row if ok else None


async def me(conn: Any, actor: Actor) -> Any:
    authorize(actor, Action.ACCOUNT_VIEW)
    return await conn.fetchrow(SQL.user_by_id, actor.user_id)


async def my_tokens(ctx: ApiContext, conn: Any, actor: Actor) -> Tokens:
    return tokens_of(ctx, await me(conn, actor), actor.scope)


async def change_password(
    ctx: ApiContext, conn: Any, actor: Actor, current: str, new: str
) -> Tokens:
    """Every earlier token (and admin session) stops working; the new tokens are returned."""
    authorize(actor, Action.ACCOUNT_EDIT)
    row = await conn.fetchrow(SQL.user_by_id, actor.user_id)
    if not verify_password(row["password_hash"], current):
        raise Forbidden("current_password is wrong", code="wrong_password")
    return tokens_of(ctx, await conn.fetchrow(SQL.set_password, actor.user_id, hash_password(new)))


async def rotate_tokens(ctx: ApiContext, conn: Any, actor: Actor) -> Tokens:
    """Revoke both tokens of the actor; returns the ones that replace them."""
    authorize(actor, Action.ACCOUNT_EDIT)
    return tokens_of(ctx, await conn.fetchrow(SQL.bump_token_epoch, actor.user_id))


async def list_users(conn: Any, actor: Actor, limit: int, offset: int) -> tuple[list[Any], int]:
    authorize(actor, Action.USERS_MANAGE)
    rows = await conn.fetch(SQL.list_users, limit, offset)
    return list(rows), int(await conn.fetchval(SQL.count_users))


async def create_user(conn: Any, actor: Actor, email: str, password: str, role: Role) -> Any:
    authorize(actor, Action.USERS_MANAGE)
    row = await conn.fetchrow(SQL.insert_user, uuid.uuid4(), email, hash_password(password), role)
    if row is None:
        raise Conflict("conflict", f"a user with email {email} exists", field="email")
    return row


async def set_role(conn: Any, actor: Actor, user_id: uuid.UUID, role: Role) -> Any:
    authorize(actor, Action.USERS_MANAGE)
    if user_id == actor.user_id and role is not Role.ADMIN:
        raise Invalid("validation_error", "role: you cannot take your own admin role", "role")
    row = await conn.fetchrow(SQL.set_role, user_id, role)
    if row is None:
        raise NotFound("user")
    return row


async def reset_password(conn: Any, actor: Actor, user_id: uuid.UUID, password: str) -> Any:
    """An administrator sets a user's password; the user's tokens and sessions end."""
    authorize(actor, Action.USERS_MANAGE)
    row = await conn.fetchrow(SQL.set_password, user_id, hash_password(password))
    if row is None:
        raise NotFound("user")
    return row
