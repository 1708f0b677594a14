"""Mounts the admin on the API app: its pages under /admin/, its static files, its
headers and its two answers that are not pages (sign in first; an error page)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from pigeon_api.admin import (
    auth_pages,
    campaign_actions,
    campaign_pages,
    directory_pages,
    mailbox_pages,
    recipient_actions,
)
from pigeon_api.admin.deps import AdminError, SignInRequired
from pigeon_api.admin.security import ADMIN_PREFIX, AdminHeadersMiddleware
from pigeon_api.admin.templating import render
from pigeon_api.commands.remote import RemoteError
from pigeon_api.errors import STATUS_OF_KIND
from pigeon_common.domain.errors import RuleError

Handler = Callable[[Request, Exception], Awaitable[Response]]
RestHandler = Callable[[Request, Any], Response | Awaitable[Response]]
# Fixed paths (`/campaigns/new`) before the pages whose path takes an id.
PAGE_MODULES = (
    auth_pages,
    campaign_actions,
    recipient_actions,
    campaign_pages,
    mailbox_pages,
    directory_pages,
)


async def _sign_in_first(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(f"{ADMIN_PREFIX}/login?next={quote(exc.next_path)}", status_code=303)


async def _error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AdminError)
    return render(request, "error.html", exc.status, status=exc.status, message=exc.message)


def _is_admin(request: Request) -> bool:
    path = request.url.path
    return path == ADMIN_PREFIX or path.startswith(f"{ADMIN_PREFIX}/")


def _pages_first(rest: RestHandler) -> Handler:
    """A command's refusal (RuleError) or a failed server (RemoteError) as an error page
    under /admin/, as the API's JSON error elsewhere."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not _is_admin(request):
            answer = rest(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        if isinstance(exc, RuleError):
            status, message = STATUS_OF_KIND[exc.kind], exc.message
        else:
            assert isinstance(exc, RemoteError)
            status, message = exc.status, exc.message
        message = message[:1].upper() + message[1:]
        return render(request, "error.html", status, status=status, message=message)

    return handle


def install_admin(app: FastAPI) -> None:
    """Call after the API's error handlers are installed (it wraps two of them)."""
    admin = APIRouter(prefix=ADMIN_PREFIX, include_in_schema=False)
    for module in PAGE_MODULES:
        admin.include_router(module.router)
    for kind in (RuleError, RemoteError):
        app.add_exception_handler(kind, _pages_first(app.exception_handlers[kind]))
    app.include_router(admin)
    app.mount(
        f"{ADMIN_PREFIX}/static",
        StaticFiles(packages=[("pigeon_api.admin", "static")]),
        name="admin-static",
    )
    app.add_middleware(AdminHeadersMiddleware)
    app.add_exception_handler(SignInRequired, _sign_in_first)
    app.add_exception_handler(AdminError, _error_page)
