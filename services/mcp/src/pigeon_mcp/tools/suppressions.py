"""Suppressions: the addresses no campaign sends to (list, add, lift)."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from pigeon_api.schemas.common import Page
from pigeon_api.schemas.engagement import SuppressionPublic, SuppressionReason
from pigeon_mcp.gateway import Gateway
from pigeon_mcp.hints import DELETE, READ, UPDATE
from pigeon_mcp.tools.params import Done, Limit, MailboxId, Offset

ForMailbox = Annotated[
    MailboxId | None, Field(description="one mailbox's; leave out for the one of every mailbox")
]


def register(server: MCPServer, gw: Gateway) -> None:
    @server.tool(annotations=READ)
    async def list_suppressions(
        email: str | None = None,
        mailbox_id: ForMailbox = None,
        reason: SuppressionReason | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[SuppressionPublic]:
        """Suppressed addresses (unsubscribed, hard bounce, repeated soft bounce, manual)."""
        return await gw.get(
            Page[SuppressionPublic],
            "/suppressions",
            email=email,
            mailbox_id=mailbox_id,
            reason=reason,
            limit=limit,
            offset=offset,
        )

    @server.tool(annotations=UPDATE)
    async def add_suppression(email: str, mailbox_id: ForMailbox = None, detail: str = "") -> Done:
        """Suppress an address by hand; it is skipped from then on, also in campaigns
        already sending."""
        body = {"email": email, "mailbox_id": str(mailbox_id) if mailbox_id else None}
        await gw.call("POST", "/suppressions", json={**body, "detail": detail})
        return Done(message=f"{email} suppressed")

    @server.tool(annotations=DELETE)
    async def lift_suppression(
        email: str,
        mailbox_id: ForMailbox = None,
        reason: Annotated[
            SuppressionReason | None, Field(description="leave out to lift every reason")
        ] = None,
    ) -> Done:
        """Lift a suppression so the address can be sent to again (an unsubscribe too:
        only do that when the person asked)."""
        params = {"email": email, "mailbox_id": mailbox_id, "reason": reason}
        await gw.call("DELETE", "/suppressions", params=params)
        return Done(message=f"suppression of {email} lifted")
