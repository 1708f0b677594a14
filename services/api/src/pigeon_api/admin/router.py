"""Mounts the admin on the API app: its pages under /admin/, its static files, its
headers and its two answers that are not pages (sign in first; an error page)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from pigeon_api.admin import auth_pages, campaign_pages, directory_pages
from pigeon_api.admin.deps import AdminError, SignInRequired
from pigeon_api.admin.security import ADMIN_PREFIX, AdminHeadersMiddleware
from pigeon_api.admin.templating import render


async def _sign_in_first(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(f"{ADMIN_PREFIX}/login?next={quote(exc.next_path)}", status_code=303)


async def _error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AdminError)
    return render(request, "error.html", exc.status, status=exc.status, message=exc.message)


def install_admin(app: FastAPI) -> None:
    admin = APIRouter(prefix=ADMIN_PREFIX, include_in_schema=False)
    for module in (auth_pages, campaign_pages, directory_pages):
        admin.include_router(module.router)
    app.include_router(admin)
    app.mount(
        f"{ADMIN_PREFIX}/static",
        StaticFiles(packages=[("pigeon_api.admin", "static")]),
        name="admin-static",
    )
    app.add_middleware(AdminHeadersMiddleware)
    app.add_exception_handler(SignInRequired, _sign_in_first)
    app.add_exception_handler(AdminError, _error_page)
