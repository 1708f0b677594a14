"""Sign-in sessions of the admin: server-side rows (table `admin_sessions`), a random
cookie value of which only the SHA-256 is stored.

A session is bound to the fingerprint of the password it was opened with: any password
change, from any surface, makes every older session of that user invalid on its next use
(and the admin's own change deletes them at once).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from pigeon_api.context import SQL

SESSION_COOKIE = "pigeon_session"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class SessionUser:
    """Who a live session belongs to."""

    session_id: str
    user_id: uuid.UUID
    email: str
    role: str
    password_hash: str
    token_epoch: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def session_id(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(b"pigeon-session\0" + password_hash.encode()).hexdigest()


async def open_session(conn: Any, user_id: uuid.UUID, password_hash: str) -> str:
    """Store a new session and return the cookie value."""
    cookie = secrets.token_urlsafe(32)
    await conn.execute(
        SQL.admin_insert_session,
        session_id(cookie),
        user_id,
        password_fingerprint(password_hash),
        float(SESSION_SECONDS),
    )
    return cookie


async def session_user(conn: Any, cookie: str | None) -> SessionUser | None:
    """The user of a live session, or None (an outdated one is deleted)."""
    if not cookie:
        return None
    row = await conn.fetchrow(SQL.admin_session, session_id(cookie))
    if row is None:
        return None
    if row["password_fingerprint"] != password_fingerprint(row["password_hash"]):
        await conn.execute(SQL.admin_delete_session, row["id"])
        return None
    return SessionUser(
        session_id=row["id"],
        user_id=row["user_id"],
        email=row["email"],
        role=row["role"],
        password_hash=row["password_hash"],
        token_epoch=row["token_epoch"],
    )


async def close_session(conn: Any, cookie: str | None) -> None:
    if cookie:
        await conn.execute(SQL.admin_delete_session, session_id(cookie))


async def close_user_sessions(conn: Any, user_id: uuid.UUID) -> None:
    await conn.execute(SQL.admin_delete_user_sessions, user_id)
