"""Bearer tokens over streamable HTTP: the caller's personal access token, checked by the
REST API itself (GET /users/me), with a short cache so a burst of tool calls asks once."""

from __future__ import annotations

import hashlib
import time

from mcp.server.auth.provider import AccessToken, TokenVerifier

from pigeon_mcp.api import Api, ApiCallError

CACHE_SEC = 30.0
CACHE_MAX = 10_000
CLIENT_ID = "pigeon-token"


class ApiTokenVerifier(TokenVerifier):
    """Accepts a token when the API accepts it; the user becomes the token's subject.
    A refused or revoked token is not cached, so it stops working at once; an accepted
    one is trusted for CACHE_SEC (every tool call still goes to the API with it)."""

    def __init__(self, api: Api, *, cache_sec: float = CACHE_SEC) -> None:
        self._api = api
        self._cache_sec = cache_sec
        self._cache: dict[str, tuple[float, AccessToken]] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            me = await self._api.call(token, "GET", "/users/me")
        except ApiCallError:
            self._cache.pop(key, None)
            return None
        scopes = ["read"] if token.startswith("pgr_") else ["read", "write"]
        access = AccessToken(
            token=token, client_id=CLIENT_ID, scopes=scopes, subject=str(me.get("id", ""))
        )
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (now + self._cache_sec, access)
        return access
