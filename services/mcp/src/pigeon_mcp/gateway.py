"""What every tool holds: the API client and the caller's token (the bearer token of this
HTTP request, or PIGEON_TOKEN over stdio). API errors become tool errors here, once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from pigeon_mcp.api import Api, ApiCallError

M = TypeVar("M", bound=BaseModel)


@dataclass
class Gateway:
    api: Api
    stdio_token: str | None = None

    def token(self) -> str:
        access = get_access_token()
        if access is not None:
            return access.token
        if self.stdio_token:
            return self.stdio_token
        raise ToolError("no token: connect with a bearer token (or set PIGEON_TOKEN for stdio)")

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The API's answer, or a ToolError carrying its message and field."""
        try:
            return await self.api.call(self.token(), method, path, **kwargs)
        except ApiCallError as exc:
            raise ToolError(str(exc)) from None

    async def write(self, method: str, path: str, read_path: str, **kwargs: Any) -> Any:
        try:
            return await self.api.write(self.token(), method, path, read_path, **kwargs)
        except ApiCallError as exc:
            raise ToolError(str(exc)) from None

    async def get(self, model: type[M], path: str, **params: Any) -> M:
        return model.model_validate(await self.call("GET", path, params=params))
