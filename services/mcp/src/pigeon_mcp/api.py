"""The gateway's one way to the REST API: each call carries the caller's own token, so the
API's access rules (roles, ownership, read-only tokens) hold unchanged here."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2

API_PREFIX = "/api/v1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ACCEPTED = 202
# A write answered 202 (read models behind) is read again this often before giving up.
ACCEPTED_READ_ATTEMPTS = 20
ACCEPTED_READ_DELAY_SEC = 0.25


class ApiCallError(Exception):
    """The API refused a call (a 4xx or 5xx with its error shape) or could not be reached
    (`status` 0). `message` and `field` are the API's own."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(describe_error(status, code, message, field))
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def describe_error(status: int, code: str, message: str, field: str | None) -> str:
    """One line for a person or a model: what the API said, and about which field."""
    where = f" (field: {field})" if field else ""
    return f"{message}{where} [{code}, HTTP {status}]" if status else f"{message} [{code}]"


def error_from_body(status: int, body: Any, text: str = "") -> ApiCallError:
    """The ApiCallError for an error response: the API's `{"error": {...}}` shape, or the
    start of whatever else answered (a proxy's page)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        field = error.get("field")
        return ApiCallError(
            status,
            str(error.get("code") or "error"),
            error["message"],
            field if isinstance(field, str) else None,
        )
    return ApiCallError(status, "error", f"the API answered {status}: {text[:200]}".strip())


class Api:
    """The REST API at `base_url` (without /api/v1), over one pooled HTTP client."""

    def __init__(self, base_url: str, *, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx2.AsyncClient(base_url=self.base_url + API_PREFIX, timeout=timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        token: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The decoded JSON answer (None for 204), or an ApiCallError."""
        headers = {"Authorization": f"Bearer {token}"}
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        if content_type:
            headers["Content-Type"] = content_type
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._http.request(
                method, path, json=json, params=query, content=content, headers=headers
            )
        except httpx2.HTTPError as exc:
            raise ApiCallError(
                0, "unreachable", f"the API at {self.base_url} is not reachable: {exc}"
            ) from None
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        if response.status_code >= 400:
            raise error_from_body(response.status_code, body, response.text)
        return body

    async def write(self, token: str, method: str, path: str, read_path: str, **kwargs: Any) -> Any:
        """A write whose answer is a resource: a 202 (stored, read models behind) is read
        again at `read_path` with the `id` it returned until it shows up."""
        body = await self.call(token, method, path, **kwargs)
        if isinstance(body, dict) and body.get("status") == "accepted" and "id" in body:
            where = read_path.format(id=body["id"])
            for _ in range(ACCEPTED_READ_ATTEMPTS):
                await asyncio.sleep(ACCEPTED_READ_DELAY_SEC)
                try:
                    return await self.call(token, "GET", where)
                except ApiCallError as exc:
                    if exc.status != 404:
                        raise
            raise ApiCallError(
                ACCEPTED, "accepted", f"stored as {body['id']}; not readable yet, read it shortly"
            )
        return body

    async def ready(self) -> bool:
        """True when the API answers its /readyz."""
        try:
            response = await self._http.get(self.base_url + "/readyz", timeout=5)
        except httpx2.HTTPError:
            return False
        return response.status_code == 200
