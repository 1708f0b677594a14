"""Users and their tokens: what `pigeon up`, the CLI's user and token commands and the
test stack share (the API has its own routes over the same table)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import asyncpg

from pigeon_common.auth import TokenSigner, hash_password
from pigeon_common.domain.access import Role, Scope
from pigeon_common.shared_sql import SQL


@dataclass(frozen=True)
class NewUser:
    id: uuid.UUID
    email: str
    password: str
    token: str
    read_only_token: str


class UserExistsError(Exception):
    """Raised when a user with that email already exists."""


async def create_user(
    conn: asyncpg.Connection,
    signer: TokenSigner,
    email: str,
    password: str | None = None,
    *,
    role: Role = Role.MEMBER,
) -> NewUser:
    password = password or secrets.token_urlsafe(18)
    row = await conn.fetchrow(SQL.insert_user, uuid.uuid4(), email, hash_password(password), role)
    if row is None:
        raise UserExistsError(email)
    args = (row["id"], row["token_epoch"], row["password_hash"])
    return NewUser(
        id=row["id"],
        email=email,
        password=password,
        token=signer.token_for(*args),
        read_only_token=signer.token_for(*args, scope=Scope.READ),
    )


async def user_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(SQL.user_count))


async def token_of(conn: asyncpg.Connection, signer: TokenSigner, email: str) -> str | None:
    row = await conn.fetchrow(SQL.user_token_parts, email)
    if row is None:
        return None
    return signer.token_for(row["id"], row["token_epoch"], row["password_hash"])
