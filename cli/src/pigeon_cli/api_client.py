"""The CLI's way to the REST API: campaign commands take the same path as any client."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from pigeon_cli import config
from pigeon_cli.settings import AllSettings
from pigeon_common import db, users
from pigeon_common.auth import TokenSigner


class ApiCallError(Exception):
    """The API answered with an error; the message is its own."""


def _admin_token(settings: AllSettings) -> str:
    async def go() -> str | None:
        conn = await db.connect(settings.database_url or "")
        try:
            return await users.token_of(conn, TokenSigner(settings.keys()), settings.admin_email)
        finally:
            await conn.close()

    token = asyncio.run(go())
    if token is None:
        raise config.fail(f"no user {settings.admin_email}: pass --token or set PIGEON_TOKEN")
    return token


def client(token: str | None) -> httpx.Client:
    """A client for `pigeon up`'s API; without a token, the first administrator's."""
    settings = config.connected_settings(AllSettings)
    base = f"http://{settings.api_host}:{settings.api_port}/api/v1"
    return httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {token or _admin_token(settings)}"},
        timeout=120,
    )


def call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise ApiCallError(f"the API at {http.base_url} is not reachable: {exc}") from None
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            raise ApiCallError(error["message"])
        except (ValueError, KeyError):
            raise ApiCallError(f"{response.status_code} {response.text[:200]}") from None
    return response.json() if response.content else None
