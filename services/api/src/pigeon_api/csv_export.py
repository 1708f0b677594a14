"""CSV downloads: one query streamed through a cursor, so memory stays flat however many
rows, and cells that a spreadsheet would run as a formula kept as text."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi.responses import StreamingResponse

CHUNK_BYTES = 64_000
PREFETCH = 2000
# A cell starting with one of these is a formula to spreadsheet programs (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """A value as a CSV cell: booleans as true/false, None empty, a would-be formula
    prefixed with an apostrophe so it stays text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_download(
    pool: Any,
    sql: str,
    args: Sequence[Any],
    header: Sequence[str],
    row_cells: Callable[[Any], Sequence[Any]],
    filename: str,
) -> StreamingResponse:
    """`sql` run with `args` in one transaction, each row written as `row_cells(row)`."""

    async def chunks() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        async with pool.acquire() as conn, conn.transaction():
            async for row in conn.cursor(sql, *args, prefetch=PREFETCH):
                writer.writerow([cell(value) for value in row_cells(row)])
                if buffer.tell() > CHUNK_BYTES:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue().encode()

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
