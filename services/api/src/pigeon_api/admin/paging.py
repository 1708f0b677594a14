"""Paging of the admin's lists: page numbers in the query string, links that keep the
other filters."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

PAGE_SIZE = 20


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    count: int
    prev_url: str | None
    next_url: str | None

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE


def page_number(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


def pager(path: str, page: int, count: int, filters: dict[str, str | None]) -> Pager:
    pages = max(1, -(-count // PAGE_SIZE))
    page = min(page, pages)
    kept = {k: v for k, v in filters.items() if v}

    def link(n: int) -> str:
        return f"{path}?{urlencode({**kept, 'page': n})}"

    return Pager(
        page=page,
        pages=pages,
        count=count,
        prev_url=link(page - 1) if page > 1 else None,
        next_url=link(page + 1) if page < pages else None,
    )


def blank_to_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None
