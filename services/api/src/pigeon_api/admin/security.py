"""The admin's HTTP hardening, kept apart from the pages: headers for every admin
response (a strict Content-Security-Policy, no framing) and the CSRF token rule.

CSRF: every form carries `csrf`, an HMAC of the browser's session cookie (or, before
sign-in, of its own random `pigeon_csrf` cookie) under a key derived from the secret. A
request without the right value is refused with 403 before anything else runs. Forms are
signed with the current secret's key and accepted under any listed secret's (a rotation
does not void the forms open in browsers).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Sequence

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

ADMIN_PREFIX = "/admin"
CSRF_FIELD = "csrf"
CSRF_COOKIE = "pigeon_csrf"
# No inline script or style anywhere; the dry-run preview has its own, stricter policy.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def csrf_keys(secrets: Sequence[bytes]) -> tuple[bytes, ...]:
    """One CSRF key per server secret, current first (`SharedSettings.keys()`)."""
    if isinstance(secrets, bytes) or not secrets:
        raise TypeError("expected the server secrets, current first")
    return tuple(hashlib.sha256(b"pigeon-admin-csrf\0" + secret).digest() for secret in secrets)


def _mac(key: bytes, binding: str) -> str:
    return hmac.new(key, binding.encode(), hashlib.sha256).hexdigest()


def csrf_token(keys: Sequence[bytes], binding: str) -> str:
    """The form token for one session (or pre-session) cookie value, under the current key."""
    return _mac(keys[0], binding)


def csrf_ok(keys: Sequence[bytes], binding: str | None, submitted: str | None) -> bool:
    if not binding or not submitted:
        return False
    return any(hmac.compare_digest(_mac(key, binding), submitted) for key in keys)


class AdminHeadersMiddleware(BaseHTTPMiddleware):
    """Security headers and `Server-Timing: app;dur=<ms>` on every /admin response."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith(ADMIN_PREFIX):
            return await call_next(request)
        started = time.perf_counter()
        response = await call_next(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.2f}"
        return response
