"""Named SQL queries kept in `.sql` files (`-- name: some-query` starts each one).

Services load their files once at start-up and `prepare_all` them, so a typo fails at
boot rather than on first use.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

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


class Queries:
    """Attribute access to named queries: `q.create_campaign`."""

    def __init__(self, queries: dict[str, str]) -> None:
        self._queries = queries

    @classmethod
    def from_package(cls, package: str, filename: str) -> Queries:
        text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
        return cls(parse_queries(text))

    def __getattr__(self, name: str) -> str:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(name) from None

    def items(self) -> list[tuple[str, str]]:
        return list(self._queries.items())

    async def prepare_all(self, conn: Any) -> None:
        """Prepare every query on a connection: fails fast on a typo or a missing table."""
        for _, sql in self.items():
            await conn.prepare(sql)
