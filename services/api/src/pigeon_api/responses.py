"""Responses every route shares: 204, 202 and the error statuses OpenAPI lists."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from pigeon_api.errors import ErrorResponse
from pigeon_api.schemas.common import Accepted


def NO_CONTENT() -> Response:
    return Response(status_code=204)


def accepted_or(resource_id: uuid.UUID | str) -> JSONResponse:
    """202: stored, but the read models have not caught up yet."""
    return JSONResponse(Accepted(id=str(resource_id)).model_dump(), status_code=202)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "missing, invalid or rotated token",
        403: "not allowed: role, ownership, or a read-only token",
        404: "no such resource, or not one the caller may see",
        409: "the resource's state does not allow it",
        413: "body too large",
        415: "unsupported media type",
        422: "invalid input",
        429: "too many attempts",
        502: "a mail server failed or refused",
        503: "a service the API needs is not available",
        504: "a service the API asked did not answer in time",
    }
    return {code: {"model": ErrorResponse, "description": described[code]} for code in codes}


READ_ERRORS = _errors(401, 403, 404, 422, 503)
WRITE_ERRORS = _errors(401, 403, 404, 409, 413, 415, 422, 503)
REMOTE_ERRORS = _errors(401, 403, 404, 409, 413, 415, 422, 502, 503, 504)
