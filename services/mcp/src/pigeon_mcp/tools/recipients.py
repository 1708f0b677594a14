"""Recipients of a campaign: list, get, add one, add many, import CSV text, delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from pydantic import BaseModel, Field

from pigeon_api.schemas.common import Page
from pigeon_api.schemas.recipients import ImportResult, RecipientPublic
from pigeon_mcp.gateway import Gateway
from pigeon_mcp.hints import CREATE, DELETE, READ
from pigeon_mcp.tools.params import CampaignId, Done, IdempotencyKey, Limit, Offset, RecipientId

Email = Annotated[str, Field(description="the address (no display name)")]
Attributes = Annotated[
    dict[str, Any],
    Field(description="custom fields, read by templates as recipient.<name>"),
]


class RecipientIn(BaseModel):
    email: Email
    name: str = ""
    attributes: Attributes = Field(default_factory=dict)


def register(server: MCPServer, gw: Gateway) -> None:
    @server.tool(annotations=READ)
    async def list_recipients(
        campaign_id: CampaignId,
        q: Annotated[str | None, Field(description="substring of email or name")] = None,
        email: Annotated[str | None, Field(description="exact address")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[RecipientPublic]:
        """A campaign's recipients."""
        return await gw.get(
            Page[RecipientPublic],
            f"/campaigns/{campaign_id}/recipients",
            q=q,
            email=email,
            limit=limit,
            offset=offset,
        )

    @server.tool(annotations=READ)
    async def get_recipient(campaign_id: CampaignId, recipient_id: RecipientId) -> RecipientPublic:
        """One recipient with its attributes."""
        return await gw.get(RecipientPublic, f"/campaigns/{campaign_id}/recipients/{recipient_id}")

    @server.tool(annotations=CREATE)
    async def add_recipient(
        campaign_id: CampaignId,
        email: Email,
        name: str = "",
        attributes: Attributes | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> RecipientPublic:
        """Add one recipient to a draft or scheduled campaign; an address already there is
        merged into it (never added twice)."""
        path = f"/campaigns/{campaign_id}/recipients"
        body = {"email": email, "name": name, "attributes": attributes or {}}
        answer = await gw.write(
            "POST", path, path + "/{id}", json=body, idempotency_key=idempotency_key
        )
        return RecipientPublic.model_validate(answer)

    @server.tool(annotations=CREATE)
    async def add_recipients(
        campaign_id: CampaignId,
        recipients: Annotated[list[RecipientIn], Field(min_length=1, max_length=10_000)],
    ) -> ImportResult:
        """Add up to 10,000 recipients at once: all are valid or none is added. Adding the
        same addresses again merges them, so a retry adds nobody twice."""
        body = {"recipients": [r.model_dump() for r in recipients]}
        answer = await gw.call("POST", f"/campaigns/{campaign_id}/recipients/bulk", json=body)
        return ImportResult.model_validate(answer)

    @server.tool(annotations=CREATE)
    async def import_recipients_csv(
        campaign_id: CampaignId,
        csv_text: Annotated[
            str,
            Field(description="CSV with a header row: email (required), name, then attributes"),
        ],
        on_error: Literal["reject", "skip"] = "reject",
    ) -> ImportResult:
        """Import recipients from CSV text. With on_error=reject any bad row rejects the
        whole file; with skip exactly the valid rows are imported and the bad ones listed."""
        answer = await gw.call(
            "POST",
            f"/campaigns/{campaign_id}/recipients/import",
            params={"on_error": on_error},
            content=csv_text.encode(),
            content_type="text/csv",
        )
        return ImportResult.model_validate(answer)

    @server.tool(annotations=DELETE)
    async def delete_recipient(campaign_id: CampaignId, recipient_id: RecipientId) -> Done:
        """Remove a recipient from a draft or scheduled campaign."""
        await gw.call("DELETE", f"/campaigns/{campaign_id}/recipients/{recipient_id}")
        return Done(message=f"recipient {recipient_id} removed")
