"""Named SQL queries kept in `.sql` files (`-- name: some-query` starts each one).

Services load their files once at import and prepare every query when they start
(`pigeon_common.runtime.start`), so a typo fails at boot rather than on first use.
"""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

NAME_LINE = re.compile(r"^--\s*name:\s*([a-z0-9_-]+)\s*$", re.MULTILINE)


class QueryFileError(Exception):
    """Raised when a query file has no named query, or names one twice."""


def parse_queries(text: str) -> dict[str, str]:
    """Split a .sql file into {name: sql}; names use dashes in the file, underscores here."""
    parts = NAME_LINE.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        key = name.replace("-", "_")
        if key in queries:
            raise QueryFileError(f"query {name!r} is defined twice")
        sql = "\n".join(
            line for line in body.strip().splitlines() if not line.lstrip().startswith("--")
        ).strip()
        queries[key] = sql.rstrip(";")
    if not queries:
        raise QueryFileError("no `-- name:` query found")
    return queries


class QueryError(Exception):
    """Raised at start when PostgreSQL refuses to prepare a named query (a typo, a table
    or column that the migrated schema does not have); names the file and the query."""

    def __init__(self, origin: str, name: str, reason: str) -> None:
        super().__init__(f"query {name!r} of {origin} does not prepare: {reason}")
        self.origin = origin
        self.name = name
        self.reason = reason


class Queries:
    """Attribute access to named queries: `q.create_campaign`; `origin` says which file
    they came from (for errors)."""

    def __init__(self, queries: dict[str, str], origin: str = "<queries>") -> None:
        self._queries = queries
        self.origin = origin

    @classmethod
    def from_package(cls, package: str, filename: str) -> Queries:
        text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
        return cls(parse_queries(text), origin=f"{package}/{filename}")

    def __getattr__(self, name: str) -> str:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(name) from None

    def items(self) -> list[tuple[str, str]]:
        return list(self._queries.items())

    async def prepare_all(self, conn: asyncpg.Connection) -> None:
        """Prepare every query on a connection; a QueryError names the first that fails
        (a typo, a missing table or column)."""
        for name, sql in self.items():
            try:
                await conn.prepare(sql)
            except asyncpg.PostgresError as exc:
                raise QueryError(self.origin, name, f"{type(exc).__name__}: {exc}") from None
