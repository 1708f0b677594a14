"""The MCP server: tools, resources and prompts over the REST API (`create_server`), for
streamable HTTP with bearer tokens or for stdio with one token."""

from __future__ import annotations

import json
import uuid
from typing import Any

from mcp.server import MCPServer
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from pigeon_mcp import metrics, prompts
from pigeon_mcp.api import Api, ApiCallError
from pigeon_mcp.auth import ApiTokenVerifier
from pigeon_mcp.environment import environment, public_base_url
from pigeon_mcp.gateway import Gateway
from pigeon_mcp.settings import McpSettings
from pigeon_mcp.tools import campaigns, mailboxes, recipients, results, sending, suppressions

NAME = "mc-pigeon"
MCP_PATH = "/mcp"
ENVIRONMENT_URI = "pigeon://environment"
REPORT_URI = "pigeon://campaigns/{campaign_id}/report"


def instructions(settings: McpSettings) -> str:
    base = public_base_url(settings)
    return (
        "MC Pigeon sends email campaigns through the user's own mailbox and tracks opens, "
        "clicks, bounces, replies and unsubscribes. Every tool acts as the token's user "
        "through the REST API; a read-only token can only read.\n"
        f"Tracking links start at {base}: pixel {base}/campaigns/o/<token>/p.png, click "
        f"{base}/campaigns/t/<token>/r/<token>/, unsubscribe {base}/campaigns/unsub/<token>/. "
        "Never write these by hand: links in template_markdown are tracked, and the pixel "
        "and an unsubscribe link are added when sent.\n"
        "Templates are Markdown with Jinja2: {{ recipient.name }}, {{ recipient.email }}, "
        "{{ recipient.<attribute> }}, {{ campaign.name }}, {{ unsubscribe_url }}, "
        "{{ track_url('https://…') }}; an undefined variable is an error. Read "
        f"{ENVIRONMENT_URI} for the whole context.\n"
        "Workflow: create_campaign (with an idempotency_key), add recipients, dry_run, then "
        "send_campaign without confirm to see what would happen; pass confirm: true only "
        "after the person agreed. Follow with campaign_status and campaign_stats, or read "
        f"{REPORT_URI}."
    )


class GatewayServer(MCPServer):
    """The SDK's server, counting every tool call (`pigeon_mcp_tool_calls_total`)."""

    _tools: frozenset[str] | None = None

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        if self._tools is None:
            self._tools = frozenset(tool.name for tool in await self.list_tools())
        try:
            result = await super().call_tool(name, arguments, context)
        except BaseException:
            metrics.count_call(name, self._tools, ok=False)
            raise
        metrics.count_call(name, self._tools, ok=not getattr(result, "is_error", False))
        return result


def create_server(settings: McpSettings, api: Api, *, stdio_token: str | None = None) -> MCPServer:
    """The gateway. Without `stdio_token` it is an OAuth resource server whose bearer
    tokens are the API's personal access tokens; with it, every call uses that token."""
    auth: AuthSettings | None = None
    verifier: ApiTokenVerifier | None = None
    if stdio_token is None:
        own_url = f"http://{settings.mcp_host}:{settings.mcp_port}{MCP_PATH}"
        auth = AuthSettings(
            issuer_url=settings.api_base,
            resource_server_url=own_url,
            validate_token_resource=False,  # the API checks its own tokens
        )
        verifier = ApiTokenVerifier(api)
    server: MCPServer = GatewayServer(
        NAME,
        title="MC Pigeon",
        instructions=instructions(settings),
        token_verifier=verifier,
        auth=auth,
    )
    gw = Gateway(api, stdio_token)
    for module in (campaigns, recipients, sending, results, suppressions, mailboxes):
        module.register(server, gw)
    prompts.register(server)
    _register_resources(server, settings, gw)
    return server


def _register_resources(server: MCPServer, settings: McpSettings, gw: Gateway) -> None:
    @server.resource(ENVIRONMENT_URI, name="environment", mime_type="application/json")
    def environment_resource() -> str:
        """public_base_url, the URL forms of the pixel, click and unsubscribe links, and the
        template context with its helpers."""
        return environment(settings).model_dump_json(indent=2)

    @server.resource(REPORT_URI, name="campaign_report", mime_type="application/json")
    async def campaign_report(campaign_id: str) -> str:
        """A campaign's status and numbers (outcomes, opens, clicks, bounces, replies,
        unsubscribes, rates, per link)."""
        try:
            uuid.UUID(campaign_id)
            token = gw.token()
            status = await gw.api.call(token, "GET", f"/campaigns/{campaign_id}/status")
            stats = await gw.api.call(token, "GET", f"/campaigns/{campaign_id}/stats")
        except (ApiCallError, ToolError, ValueError) as exc:
            raise ResourceError(str(exc)) from None
        return json.dumps({"status": status, "stats": stats}, indent=2)
