"""One error shape for every API error: `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from pigeon_api.commands.remote import RemoteError
from pigeon_common.domain.errors import ErrorKind, RuleError
from pigeon_common.jetstream import PublishFailedError
from pigeon_common.render import TemplateError

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """What every 4xx and 5xx response carries."""

    error: ErrorBody


class ApiError(Exception):
    """An error to return as it is: HTTP status, a stable code, a message for people."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(code=code, message=message, field=field, details=details)
        self.headers = headers


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def error_json(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content=ErrorResponse(error=body).model_dump(exclude_none=True),
        headers=headers,
    )


def _field_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def _describe(error: dict[str, Any]) -> str:
    field = _field_of(tuple(error.get("loc", ())))
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "unknown field"
    return f"{field}: {message}" if field else message


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    details = [
        {
            "field": _field_of(tuple(e.get("loc", ()))),
            "message": _describe(e),
            "type": e.get("type"),
        }
        for e in errors[:50]
    ]
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return error_json(
            422, ErrorBody(code="invalid_json", message="request body is not valid JSON")
        )
    return error_json(
        422,
        ErrorBody(
            code="validation_error",
            message=_describe(first) if first else "invalid request",
            field=_field_of(tuple(first.get("loc", ()))),
            details=details,
        ),
    )


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_json(exc.status, exc.body, exc.headers)


# The one translation of the domain's refusals to HTTP.
STATUS_OF_KIND: dict[ErrorKind, int] = {
    "not_found": 404,
    "forbidden": 403,
    "conflict": 409,
    "invalid": 422,
}


async def _rule_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RuleError)
    body = ErrorBody(code=exc.code, message=exc.message, field=exc.field)
    return error_json(STATUS_OF_KIND[exc.kind], body)


async def _remote_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RemoteError)
    return error_json(exc.status, ErrorBody(code=exc.code, message=exc.message))


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # Starlette's "error parsing the body" (bytes that are not UTF-8, a broken
        # multipart): invalid input like any other, in the documented 422.
        return error_json(
            422, ErrorBody(code="invalid_body", message=f"request body: {exc.detail}")
        )
    code = {
        401: "unauthorized",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
    }.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return error_json(exc.status_code, ErrorBody(code=code, message=str(exc.detail)), headers)


async def _not_stored(_request: Request, exc: Exception) -> JSONResponse:
    # A publish that stayed refused for the whole retry window (no stream leader, NATS
    # away): nothing was confirmed stored, the client may try again.
    log.warning("event store unavailable: %s", exc)
    body = ErrorBody(
        code="event_store_unavailable", message="the change could not be stored; try again"
    )
    return error_json(503, body)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error: %s", exc, exc_info=exc)
    return error_json(500, ErrorBody(code="internal_error", message="internal error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RuleError, _rule_error)
    app.add_exception_handler(RemoteError, _remote_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PublishFailedError, _not_stored)
    app.add_exception_handler(Exception, _unexpected)


def template_error(exc: TemplateError) -> ApiError:
    """422 naming the template field and, when known, the line."""
    return ApiError(422, "template_error", str(exc), field=exc.field)
