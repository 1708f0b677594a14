"""What every admin page gets: the signed-in user (or a redirect to sign-in), the CSRF
token of its forms, and for a POST the form already checked against that token."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from pigeon_api.admin.security import CSRF_COOKIE, CSRF_FIELD, csrf_ok, csrf_token
from pigeon_api.admin.sessions import SESSION_COOKIE, SessionUser, session_user
from pigeon_api.deps import Conn, Ctx
from pigeon_common.domain.access import Actor, ListScope, Role, Scope

FORM_LIMIT_FIELDS = 200


class AdminError(Exception):
    """An admin page answer other than the page: 403 (CSRF, not allowed), 404, 409..."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class AdminState:
    user: SessionUser | None
    csrf: str
    can_write: bool = False
    form: dict[str, str] = field(default_factory=dict)
    new_csrf_cookie: str | None = None


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_fields=FORM_LIMIT_FIELDS)
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _state(request: Request, ctx: Ctx, conn: Conn, *, required: bool) -> AdminState:
    cookie = request.cookies.get(SESSION_COOKIE)
    user = await session_user(conn, cookie)
    if user is None and required:
        raise SignInRequired(request.url.path)
    binding = cookie if user is not None else request.cookies.get(CSRF_COOKIE)
    new_cookie = None
    if binding is None:
        new_cookie = binding = secrets.token_urlsafe(24)
    state = AdminState(user=user, csrf=csrf_token(ctx.csrf, binding), new_csrf_cookie=new_cookie)
    # A viewer reads only; the command layer's access policy decides each action.
    state.can_write = user is not None and user.role != Role.VIEWER
    if request.method == "POST":
        state.form = await _form(request)
        if new_cookie is not None or not csrf_ok(ctx.csrf, binding, state.form.get(CSRF_FIELD)):
            raise AdminError(403, "This form has expired or did not come from this site.")
    request.state.admin = state
    return state


async def signed_in(request: Request, ctx: Ctx, conn: Conn) -> AdminState:
    return await _state(request, ctx, conn, required=True)


async def anyone(request: Request, ctx: Ctx, conn: Conn) -> AdminState:
    return await _state(request, ctx, conn, required=False)


Admin = Annotated[AdminState, Depends(signed_in)]
Visitor = Annotated[AdminState, Depends(anyone)]


def user_of(state: AdminState) -> SessionUser:
    assert state.user is not None
    return state.user


def actor_of(state: AdminState) -> Actor:
    """The signed-in user as the access policy sees it: a session writes (the role
    decides the rest), as the read-write token does."""
    user = user_of(state)
    return Actor(user.user_id, Role(user.role), Scope.WRITE, user.email)


def uuid_or_404(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise AdminError(404, "Not found.") from None


def visible(scope: ListScope) -> tuple[bool, uuid.UUID, bool]:
    """A list scope as the three SQL parameters every scoped admin list takes."""
    return (scope.everything, scope.user_id, scope.include_shared)
