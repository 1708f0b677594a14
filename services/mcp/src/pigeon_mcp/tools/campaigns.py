"""Campaigns: list, get, create, update, delete, clone."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server import MCPServer
from pydantic import Field

from pigeon_api.schemas.campaigns import CampaignPublic
from pigeon_api.schemas.common import Page
from pigeon_mcp.gateway import Gateway
from pigeon_mcp.hints import CREATE, DELETE, READ, UPDATE
from pigeon_mcp.tools.params import CampaignId, Done, IdempotencyKey, Limit, MailboxId, Offset

CampaignStatusFilter = Annotated[
    str | None,
    Field(description="draft, scheduled, sending, paused, done, cancelled or failed"),
]
Template = Annotated[
    str,
    Field(
        description="the body: Markdown with Jinja2 ({{ recipient.name }}, "
        "{{ recipient.<attribute> }}); links are tracked and an unsubscribe link is added "
        "(see the pigeon://environment resource)"
    ),
]
READ_PATH = "/campaigns/{id}"


def register(server: MCPServer, gw: Gateway) -> None:
    @server.tool(annotations=READ)
    async def list_campaigns(
        status: CampaignStatusFilter = None, limit: Limit = 50, offset: Offset = 0
    ) -> Page[CampaignPublic]:
        """List campaigns, newest first, optionally by status."""
        return await gw.get(
            Page[CampaignPublic], "/campaigns", status=status, limit=limit, offset=offset
        )

    @server.tool(annotations=READ)
    async def get_campaign(campaign_id: CampaignId) -> CampaignPublic:
        """One campaign with its templates, status and recipient count."""
        return await gw.get(CampaignPublic, f"/campaigns/{campaign_id}")

    @server.tool(annotations=CREATE)
    async def create_campaign(
        name: Annotated[str, Field(description="a name for people")],
        subject: Annotated[str, Field(description="the subject line, a Jinja2 template")],
        template_markdown: Template = "",
        mailbox_id: MailboxId | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> CampaignPublic:
        """Create a draft campaign. Templates are checked when saved; nothing is sent."""
        body = {
            "name": name,
            "subject": subject,
            "template_markdown": template_markdown,
            "mailbox_id": str(mailbox_id) if mailbox_id else None,
        }
        answer = await gw.write(
            "POST", "/campaigns", READ_PATH, json=body, idempotency_key=idempotency_key
        )
        return CampaignPublic.model_validate(answer)

    @server.tool(annotations=UPDATE)
    async def update_campaign(
        campaign_id: CampaignId,
        name: Annotated[str | None, Field(description="new name")] = None,
        subject: Annotated[str | None, Field(description="new subject template")] = None,
        template_markdown: Annotated[str | None, Field(description="new body template")] = None,
        mailbox_id: MailboxId | None = None,
    ) -> CampaignPublic:
        """Change a draft or scheduled campaign; only the fields given change."""
        changes: dict[str, Any] = {
            k: v
            for k, v in {
                "name": name,
                "subject": subject,
                "template_markdown": template_markdown,
                "mailbox_id": str(mailbox_id) if mailbox_id else None,
            }.items()
            if v is not None
        }
        path = f"/campaigns/{campaign_id}"
        return CampaignPublic.model_validate(await gw.write("PATCH", path, READ_PATH, json=changes))

    @server.tool(annotations=DELETE)
    async def delete_campaign(campaign_id: CampaignId) -> Done:
        """Delete a draft or scheduled campaign with its recipients."""
        await gw.call("DELETE", f"/campaigns/{campaign_id}")
        return Done(message=f"campaign {campaign_id} deleted")

    @server.tool(annotations=CREATE)
    async def clone_campaign(
        campaign_id: CampaignId,
        name: Annotated[str | None, Field(description="the copy's name")] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> CampaignPublic:
        """Copy a campaign (templates, mailbox, recipients) into a new draft."""
        body = {"name": name} if name else {}
        answer = await gw.write(
            "POST",
            f"/campaigns/{campaign_id}/clone",
            READ_PATH,
            json=body,
            idempotency_key=idempotency_key,
        )
        return CampaignPublic.model_validate(answer)
