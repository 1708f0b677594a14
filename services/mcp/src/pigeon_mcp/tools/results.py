"""What happened after sending: messages, one recipient's story, links with their clicks,
clicks, opens, delivery events, replies and the campaign's numbers."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server import MCPServer
from pydantic import BaseModel, Field

from pigeon_api.schemas.common import Page
from pigeon_api.schemas.engagement import (
    CampaignStats,
    ClickPublic,
    DeliveryEventPublic,
    DeliveryKind,
    LinkStats,
    MessageState,
    OpenPublic,
)
from pigeon_api.schemas.sending import MessagePublic
from pigeon_mcp.gateway import Gateway
from pigeon_mcp.hints import READ
from pigeon_mcp.tools.params import CampaignId, Limit, Offset, RecipientId
from pigeon_mcp.tools.sending import MessageStatus

Machine = Annotated[
    bool | None,
    Field(description="true: only machine ones (proxies, scanners); false: only people's"),
]
ForRecipient = Annotated[RecipientId | None, Field(description="only this recipient's")]


class Links(BaseModel):
    """The campaign's tracked links, each with its clicks (all, unique, unique people)."""

    data: list[LinkStats]
    count: int


class MessageStory(BaseModel):
    """One recipient's events in the order they happened, as the API tells them."""

    campaign_id: str
    recipient_id: str
    events: list[dict[str, Any]]


def _flag(value: bool | None) -> str | None:
    return None if value is None else str(value).lower()


def register(server: MCPServer, gw: Gateway) -> None:
    @server.tool(annotations=READ)
    async def list_messages(
        campaign_id: CampaignId,
        status: Annotated[MessageStatus | None, Field(description="the sending outcome")] = None,
        state: Annotated[MessageState | None, Field(description="what followed")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[MessagePublic]:
        """Each recipient's message: outcome (queued, sent, failed, unknown, suppressed)
        and what followed (opened, clicked, bounced, deferred, replied, unsubscribed...)."""
        return await gw.get(
            Page[MessagePublic],
            f"/campaigns/{campaign_id}/messages",
            status=status,
            state=state,
            limit=limit,
            offset=offset,
        )

    @server.tool(annotations=READ)
    async def message_story(campaign_id: CampaignId, recipient_id: RecipientId) -> MessageStory:
        """One recipient's events in order: queued, sent or failed, opens, clicks,
        bounces, replies, unsubscribe."""
        answer = await gw.call("GET", f"/campaigns/{campaign_id}/messages/{recipient_id}/story")
        # The list under "events" or "data", or the list itself.
        if isinstance(answer, dict):
            answer = answer.get("events", answer.get("data", []))
        events = answer if isinstance(answer, list) else []
        return MessageStory(
            campaign_id=str(campaign_id), recipient_id=str(recipient_id), events=list(events)
        )

    @server.tool(annotations=READ)
    async def campaign_stats(campaign_id: CampaignId) -> CampaignStats:
        """The campaign's numbers: unique recipients per outcome, opens and clicks (people
        and machines apart), bounces, delays, replies, unsubscribes, rates, per link."""
        return await gw.get(CampaignStats, f"/campaigns/{campaign_id}/stats")

    @server.tool(annotations=READ)
    async def list_links(campaign_id: CampaignId) -> Links:
        """The campaign's tracked links with their clicks."""
        stats = await gw.get(CampaignStats, f"/campaigns/{campaign_id}/stats")
        return Links(data=stats.links, count=len(stats.links))

    @server.tool(annotations=READ)
    async def list_clicks(
        campaign_id: CampaignId,
        recipient_id: ForRecipient = None,
        machine: Machine = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[ClickPublic]:
        """Every click on a tracked link, newest first."""
        return await gw.get(
            Page[ClickPublic],
            f"/campaigns/{campaign_id}/clicks",
            recipient_id=recipient_id,
            machine=_flag(machine),
            limit=limit,
            offset=offset,
        )

    @server.tool(annotations=READ)
    async def list_opens(
        campaign_id: CampaignId,
        recipient_id: ForRecipient = None,
        machine: Machine = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[OpenPublic]:
        """Every open (tracking pixel fetched), newest first."""
        return await gw.get(
            Page[OpenPublic],
            f"/campaigns/{campaign_id}/opens",
            recipient_id=recipient_id,
            machine=_flag(machine),
            limit=limit,
            offset=offset,
        )

    @server.tool(annotations=READ)
    async def list_delivery_events(
        campaign_id: CampaignId,
        kind: DeliveryKind | None = None,
        recipient_id: ForRecipient = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[DeliveryEventPublic]:
        """Bounces, delays, replies and auto-replies read back from the mailbox."""
        return await gw.get(
            Page[DeliveryEventPublic],
            f"/campaigns/{campaign_id}/delivery-events",
            kind=kind,
            recipient_id=recipient_id,
            limit=limit,
            offset=offset,
        )

    @server.tool(annotations=READ)
    async def list_replies(
        campaign_id: CampaignId, limit: Limit = 50, offset: Offset = 0
    ) -> Page[DeliveryEventPublic]:
        """Replies from people (auto-replies are not counted here)."""
        return await gw.get(
            Page[DeliveryEventPublic],
            f"/campaigns/{campaign_id}/delivery-events",
            kind="replied",
            limit=limit,
            offset=offset,
        )
