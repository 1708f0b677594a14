"""The admin's Jinja2 environment: files in `templates/`, autoescape always on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from pigeon_api.admin.security import CSRF_FIELD

HTMX_FILE = "htmx-2.0.11.min.js"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _percent(part: int | None, whole: int | None) -> str:
    if not whole:
        return "—"
    return f"{100 * (part or 0) / whole:.1f} %"


def build_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("pigeon_api.admin", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.globals["percent"] = _percent
    env.globals["htmx_file"] = HTMX_FILE
    env.globals["csrf_field"] = CSRF_FIELD
    return env


ENV = build_environment()


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A page from `template` with the request's admin state (user, CSRF token)."""
    state = getattr(request.state, "admin", None)
    html = ENV.get_template(template).render(
        request=request,
        me=getattr(state, "user", None),
        csrf=getattr(state, "csrf", ""),
        can_write=getattr(state, "can_write", False),
        **values,
    )
    return HTMLResponse(html, status_code=status_code)
