"""What the read models' writer (the projector) and their readers (API, sender, tracker)
agree on: the checkpoint, its notification channel, and the key of "every mailbox"."""

from __future__ import annotations

import uuid

import asyncpg

from pigeon_common.shared_sql import SQL

PROJECTION = "read_models"
# NOTIFY channel on which the projector announces each committed checkpoint.
PROJECTED_CHANNEL = "pigeon_projected"
# The mailbox key of a suppression that holds for every mailbox.
NIL_MAILBOX = uuid.UUID(int=0)


async def read_checkpoint(conn: asyncpg.Connection, projection: str = PROJECTION) -> int:
    """The last stream sequence the read models contain."""
    value = await conn.fetchval(SQL.read_checkpoint, projection)
    return int(value or 0)
