"""A campaign's CSV downloads (recipients; every recipient's results), shared by the REST
routes and the admin pages. The caller has checked CAMPAIGN_VIEW first."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import StreamingResponse

from pigeon_api.context import SQL, ApiContext
from pigeon_api.csv_export import csv_download

RESULT_COLUMNS = (
    "email",
    "name",
    "status",
    "sent_at",
    "message_id",
    "smtp_code",
    "smtp_reply",
    "opens",
    "human_opens",
    "clicks",
    "human_clicks",
    "bounce",
    "deferred",
    "replied",
    "auto_replied",
    "unsubscribed",
)
ALL_ROWS = 2**62  # LIMIT of the results query


async def recipients_csv(ctx: ApiContext, conn: Any, campaign_id: uuid.UUID) -> StreamingResponse:
    """All recipients: email, name, then one column per attribute name."""
    keys = [row["key"] for row in await conn.fetch(SQL.recipient_attribute_keys, campaign_id)]

    def cells(row: Any) -> list[Any]:
        attributes = row["attributes"]
        return [row["email"], row["name"], *(attributes.get(k) for k in keys)]

    return csv_download(
        ctx.require().pool,
        SQL.export_recipients,
        (campaign_id,),
        ["email", "name", *keys],
        cells,
        f"recipients-{campaign_id}.csv",
    )


def _result_row(row: Any) -> list[Any]:
    values = dict(row.items())
    values["sent_at"] = row["at"].isoformat() if row["at"] and row["status"] == "sent" else ""
    return [values[column] for column in RESULT_COLUMNS]


def results_csv(ctx: ApiContext, campaign_id: uuid.UUID) -> StreamingResponse:
    """Every recipient with its outcome and what followed (one row each)."""
    return csv_download(
        ctx.require().pool,
        SQL.list_messages,
        (campaign_id, None, None, ALL_ROWS, 0),
        RESULT_COLUMNS,
        _result_row,
        f"messages-{campaign_id}.csv",
    )
