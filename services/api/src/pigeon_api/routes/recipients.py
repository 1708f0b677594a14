"""Recipients of a campaign: add one, add many, CSV import and export, list, delete."""

from __future__ import annotations

import tempfile
import uuid
from typing import IO, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import UploadFile

from pigeon_api.commands import recipients as commands
from pigeon_api.commands.loading import campaign_row
from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.errors import ApiError
from pigeon_api.exports import recipients_csv
from pigeon_api.recipient_input import (
    CsvFormatError,
    MergedRecipients,
    merge_list,
    read_csv,
)
from pigeon_api.responses import NO_CONTENT, WRITE_ERRORS
from pigeon_api.schemas.common import Accepted, Page, QueryText
from pigeon_api.schemas.recipients import (
    ImportResult,
    RecipientCreate,
    RecipientPublic,
    RecipientsBulkCreate,
)
from pigeon_common.domain.access import Action
from pigeon_common.validation import recipient_id

router = APIRouter(prefix="/campaigns/{campaign_id}/recipients", tags=["recipients"])
IMPORT_PATH_SUFFIX = "/recipients/import"
# A text/csv body stays in memory up to this size, then goes to a temporary file.
UPLOAD_MEMORY_BYTES = 1024 * 1024


def _public(row: Any) -> RecipientPublic:
    return RecipientPublic(
        id=row["id"],
        campaign_id=row["campaign_id"],
        email=row["email"],
        name=row["name"],
        attributes=row["attributes"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _result(merged: MergedRecipients, projected: bool, imported: int) -> JSONResponse:
    body = ImportResult(
        imported=imported,
        merged=merged.merged,
        rejected=merged.errors,
        rejected_count=merged.error_count,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if projected else 202)


@router.post(
    "",
    operation_id="add_recipient",
    response_model=RecipientPublic,
    status_code=status.HTTP_201_CREATED,
    responses={202: {"model": Accepted}},
)
async def add_recipient(
    campaign_id: uuid.UUID, body: RecipientCreate, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Any:
    """Add one recipient; an address already in the campaign is merged into it."""
    merged = merge_list(campaign_id, [(body.email, body.name, body.attributes)])
    projected = await commands.add_recipients(ctx, conn, user, campaign_id, merged, "api")
    rid = recipient_id(campaign_id, body.email)
    if not projected:
        return JSONResponse(Accepted(id=str(rid)).model_dump(), status_code=202)
    row = await conn.fetchrow(SQL.recipient_by_id, campaign_id, rid)
    return JSONResponse(_public(row).model_dump(mode="json"), status_code=201)


@router.post(
    "/bulk",
    operation_id="add_recipients",
    response_model=ImportResult,
    responses={202: {"model": ImportResult}},
)
async def add_recipients(
    campaign_id: uuid.UUID, body: RecipientsBulkCreate, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Any:
    """Add up to 10,000 recipients at once; all are valid or none is added."""
    merged = merge_list(campaign_id, [(r.email, r.name, r.attributes) for r in body.recipients])
    projected = await commands.add_recipients(ctx, conn, user, campaign_id, merged, "bulk")
    return _result(merged, projected, merged.imported)


async def _upload(request: Request) -> IO[bytes]:
    """The CSV file of the request, in a temporary file (in memory while small)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(
                422,
                "validation_error",
                "file: a CSV file part named `file` is required",
                field="file",
            )
        await upload.seek(0)
        return upload.file
    if content_type.split(";")[0].strip() in ("text/csv", "application/csv", "text/plain"):
        # Closed by the caller once parsed (or here when the body does not arrive).
        spool = tempfile.SpooledTemporaryFile(UPLOAD_MEMORY_BYTES)  # noqa: SIM115
        try:
            async for part in request.stream():
                spool.write(part)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool
    raise ApiError(
        415,
        "unsupported_media_type",
        "send the CSV as text/csv or as multipart/form-data with a `file` part",
    )


@router.post(
    "/import",
    operation_id="import_recipients",
    response_model=ImportResult,
    responses={202: {"model": ImportResult}, 422: {"description": "bad CSV or bad rows"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
            "required": True,
        }
    },
)
async def import_recipients(
    campaign_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
    conn: Conn,
    on_error: Literal["reject", "skip"] = Query(
        "reject",
        description="`reject` (default): any bad row rejects the whole file and nothing is "
        "imported. `skip`: exactly the valid rows are imported; bad rows are listed.",
    ),
) -> Any:
    """Import recipients from CSV: a header row with `email`, optionally `name`; every
    other column becomes an attribute. Addresses repeated in the file or already in the
    campaign are merged."""
    await commands.editable_campaign(conn, user, campaign_id)
    upload = await _upload(request)
    try:
        merged = await read_csv(upload, campaign_id)
    except CsvFormatError as exc:
        raise ApiError(
            422, "invalid_csv", str(exc), details=[{"line": exc.line, "reason": str(exc)}]
        ) from None
    finally:
        upload.close()
    if merged.error_count and on_error == "reject":
        merged.close()
        first = merged.errors[0]
        raise ApiError(
            422,
            "invalid_rows",
            f"{merged.error_count} row(s) are invalid, nothing was imported; first: line "
            f"{first.line}: {first.reason}",
            details=[e.model_dump() for e in merged.errors],
        )
    projected = await commands.add_recipients(ctx, conn, user, campaign_id, merged, "csv")
    return _result(merged, projected, merged.imported)


def _attribute_filter(attr: list[str]) -> dict[str, str] | None:
    pairs: dict[str, str] = {}
    for item in attr:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise ApiError(
                422, "validation_error", f"attr: {item!r} is not key:value", field="attr"
            )
        pairs[key] = value
    return pairs or None


@router.get("", operation_id="list_recipients", response_model=Page[RecipientPublic])
async def list_recipients(
    campaign_id: uuid.UUID,
    user: CurrentUser,
    conn: Conn,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
    q: QueryText | None = Query(None, max_length=200, description="substring of email or name"),
    email: QueryText | None = Query(None, max_length=320, description="exact address"),
    attr: Annotated[
        list[QueryText],
        Query(max_length=50, description="attribute filter key:value, repeatable"),
    ] = [],  # noqa: B006
) -> Page[RecipientPublic]:
    await campaign_row(conn, user, campaign_id, Action.CAMPAIGN_VIEW)
    attributes = _attribute_filter(attr)
    rows = await conn.fetch(SQL.list_recipients, campaign_id, q, email, attributes, limit, offset)
    count = await conn.fetchval(SQL.count_recipients, campaign_id, q, email, attributes)
    return Page(data=[_public(r) for r in rows], count=count)


@router.get(
    "/export",
    operation_id="export_recipients",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_recipients(
    campaign_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> StreamingResponse:
    """All recipients as CSV: email, name, then one column per attribute name."""
    await campaign_row(conn, user, campaign_id, Action.CAMPAIGN_VIEW)
    return await recipients_csv(ctx, conn, campaign_id)


@router.get("/{recipient_id}", operation_id="get_recipient", response_model=RecipientPublic)
async def get_recipient(
    campaign_id: uuid.UUID, recipient_id: uuid.UUID, user: CurrentUser, conn: Conn
) -> RecipientPublic:
    return _public(await commands.get_recipient(conn, user, campaign_id, recipient_id))


@router.delete(
    "/{recipient_id}",
    operation_id="delete_recipient",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
async def delete_recipient(
    campaign_id: uuid.UUID, recipient_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Response:
    await commands.delete_recipient(ctx, conn, user, campaign_id, recipient_id)
    return NO_CONTENT()
