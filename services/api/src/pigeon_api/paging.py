"""One page of a list endpoint: its rows as public models, and the count of all matches.

List queries take their filters first and `LIMIT` / `OFFSET` last; the matching count
query takes the same filters.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from pigeon_api.schemas.common import Page

M = TypeVar("M", bound=BaseModel)


async def fetch_page(
    conn: Any,
    model: type[M],
    list_sql: str,
    count_sql: str,
    filters: tuple[Any, ...],
    limit: int,
    offset: int,
) -> Page[M]:
    rows = await conn.fetch(list_sql, *filters, limit, offset)
    count = await conn.fetchval(count_sql, *filters)
    return Page(data=[model(**dict(row.items())) for row in rows], count=count)
