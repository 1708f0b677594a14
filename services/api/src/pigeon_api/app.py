"""The REST API application, built by a factory (never at import time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from pigeon_api.admin.router import install_admin
from pigeon_api.body_limit import BodyLimitMiddleware
from pigeon_api.commands.ownership import adopt_orphans
from pigeon_api.context import ApiContext
from pigeon_api.errors import ErrorResponse, install_error_handlers
from pigeon_api.metrics import RequestMetricsMiddleware
from pigeon_api.openapi_errors import complete_error_responses
from pigeon_api.routes import (
    campaigns,
    connection,
    engagement,
    health,
    mailbox_sync,
    mailboxes,
    recipients,
    sending,
    suppressions,
    users,
)
from pigeon_api.routes.recipients import IMPORT_PATH_SUFFIX
from pigeon_api.settings import ApiSettings

API_PREFIX = "/api/v1"


def create_app(settings: ApiSettings) -> FastAPI:
    context = ApiContext.from_settings(settings)
    context.on_connect.append(adopt_orphans)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await context.start()
        try:
            yield
        finally:
            await context.stop()

    app = FastAPI(
        title="MC Pigeon API",
        version="1",
        description="IMAP-first email campaign engine. Every endpoint under /api/v1 except "
        "POST /auth/token needs `Authorization: Bearer <personal access token>`.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
        # Registers the error shape's schema; each operation's statuses come from
        # `complete_error_responses` below.
        responses={422: {"model": ErrorResponse}},
    )
    app.state.context = context
    install_error_handlers(app)

    def limit_for(path: str) -> int:
        if path.endswith(IMPORT_PATH_SUFFIX):
            return settings.max_upload_bytes
        return settings.max_json_bytes

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    v1 = APIRouter(prefix=API_PREFIX)
    modules = (users, mailboxes, mailbox_sync, connection, campaigns, recipients, sending)
    for module in (*modules, engagement, suppressions):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(health.router)
    install_admin(app)
    app.add_middleware(RequestMetricsMiddleware)  # outermost: it sees every answer
    document_openapi(app)
    return app


def document_openapi(app: FastAPI) -> None:
    """Build the OpenAPI document once, with every operation's error statuses."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_error_responses(build(), API_PREFIX)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
