"""The MCP gateway's settings. It talks only to the REST API (with the caller's token),
so it reads no server URL and no secret: not the shared base, only the process one."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AnyHttpUrl, Field

from pigeon_common.settings import (
    ApiAddress,
    Port,
    ProcessSettings,
    TrackerAddress,
    TrackingLinks,
)


class McpSettings(ProcessSettings, TrackingLinks, ApiAddress, TrackerAddress):
    """What the MCP gateway and `pigeon mcp` read."""

    service: ClassVar[str] = "mcp"

    mcp_host: str = Field(
        default="127.0.0.1", description="Address the MCP gateway (streamable HTTP) binds to."
    )
    mcp_port: Port = Field(
        default=8030, description="Port of the MCP gateway; it serves /mcp, /healthz and /readyz."
    )
    api_url: AnyHttpUrl | None = Field(
        default=None,
        description="Base URL of the REST API that the MCP gateway and `pigeon mcp` call (the "
        "part before /api/v1). Unset: http://<api_host>:<api_port>.",
    )

    @property
    def api_base(self) -> str:
        """Where the REST API answers (no trailing slash, without /api/v1)."""
        if self.api_url is not None:
            return str(self.api_url).rstrip("/")
        return f"http://{self.api_host}:{self.api_port}"
