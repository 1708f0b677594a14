"""PostgreSQL access: one helper opens the asyncpg pool for every service, one applies
the migrations (plain `.sql` files in `pigeon_common/migrations`, each applied once)."""

from __future__ import annotations

import asyncio
import json
import logging
from importlib import resources

import asyncpg

from pigeon_common.backoff import Backoff
from pigeon_common.shared_sql import SQL

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "pigeon_common.migrations"
MIGRATION_LOCK_KEY = 7_246_371_001


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def open_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    backoff: Backoff | None = None,
    attempts: int | None = None,
) -> asyncpg.Pool:
    """Open a pool (jsonb as Python objects), retrying with backoff while the server is down.

    `attempts=None` retries forever, logging one line per failure.
    """
    backoff = backoff or Backoff()
    attempt = 0
    while True:
        attempt += 1
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, init=_init_connection, timeout=5
            )
            return pool
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if attempts is not None and attempt >= attempts:
                raise
            delay = backoff.next_delay()
            log.warning("PostgreSQL not reachable (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)


async def connect(url: str) -> asyncpg.Connection:
    """One connection with the same codecs as the pool (for LISTEN and tools)."""
    conn: asyncpg.Connection = await asyncpg.connect(url, timeout=5)
    await _init_connection(conn)
    return conn


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) of every migration, in order."""
    folder = resources.files(MIGRATIONS_PACKAGE)
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return [(name.removesuffix(".sql"), sql) for name, sql in files]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; returns them."""
    applied_now: list[str] = []
    await conn.execute(SQL.migration_lock, MIGRATION_LOCK_KEY)
    try:
        await conn.execute(SQL.create_schema_migrations)
        done = {row["version"] for row in await conn.fetch(SQL.applied_migrations)}
        for version, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(SQL.record_migration, version)
            log.info("applied migration %s", version)
            applied_now.append(version)
    finally:
        await conn.execute(SQL.migration_unlock, MIGRATION_LOCK_KEY)
    return applied_now


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    """The migrations this code knows that the database has not applied (all of them on
    a database that was never migrated)."""
    try:
        done = {row["version"] for row in await conn.fetch(SQL.applied_migrations)}
    except asyncpg.UndefinedTableError:
        done = set()
    return [version for version, _ in migration_files() if version not in done]
