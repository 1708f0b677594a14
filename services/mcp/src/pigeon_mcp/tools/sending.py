"""The campaign operations: dry run, test send, send (preview unless confirmed), schedule,
unschedule, pause, resume, cancel, status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import AwareDatetime, Field

from pigeon_api.schemas.campaigns import CampaignPublic
from pigeon_api.schemas.sending import (
    CampaignStatusPublic,
    DryRunResult,
    SendStarted,
    TestSendResult,
)
from pigeon_mcp.gateway import Gateway
from pigeon_mcp.hints import COMMAND, READ, SEND
from pigeon_mcp.send_preview import SendPreview, preview
from pigeon_mcp.tools.params import CampaignId

MessageStatus = Literal["queued", "sent", "failed", "unknown", "suppressed"]
BatchSize = Annotated[
    int | None, Field(ge=1, le=10_000, description="recipients per chunk job (default: server's)")
]
Sleep = Annotated[
    float | None, Field(ge=0, le=3600, description="seconds between chunks (default: server's)")
]
# The preview reads at most this many recipients and suppressions to count the overlap.
PREVIEW_ROWS = 10_000
PAGE = 1000


def _send_options(batch_size: int | None, sleep: float | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if batch_size is not None:
        options["batch_size"] = batch_size
    if sleep is not None:
        options["sleep_between_batches_sec"] = sleep
    return options


async def _paged(gw: Gateway, path: str, field: str, **params: Any) -> list[Any]:
    """Up to PREVIEW_ROWS values of `field` from a paged list."""
    values: list[Any] = []
    while len(values) < PREVIEW_ROWS:
        page = await gw.call("GET", path, params={**params, "limit": PAGE, "offset": len(values)})
        rows = page["data"]
        values.extend(row[field] for row in rows)
        if len(rows) < PAGE:
            break
    return values


async def _preview(gw: Gateway, campaign_id: str) -> SendPreview:
    campaign = await gw.get(CampaignPublic, f"/campaigns/{campaign_id}")
    first: tuple[str, str] | None = None
    template_error: str | None = None
    if campaign.mailbox_id is not None and campaign.recipient_count:
        try:
            dry = DryRunResult.model_validate(
                await gw.call("POST", f"/campaigns/{campaign_id}/dry-run", json={"limit": 1})
            )
            if dry.messages:
                first = (dry.messages[0].email, dry.messages[0].subject)
        except ToolError as exc:
            template_error = str(exc)
    emails = await _paged(gw, f"/campaigns/{campaign_id}/recipients", "email")
    suppressions = await gw.call("GET", "/suppressions", params={"limit": PAGE})
    rows = list(suppressions["data"])
    while len(rows) < min(suppressions["count"], PREVIEW_ROWS):
        more = await gw.call("GET", "/suppressions", params={"limit": PAGE, "offset": len(rows)})
        if not more["data"]:
            break
        rows.extend(more["data"])
    mailbox = str(campaign.mailbox_id) if campaign.mailbox_id else None
    suppressed = [r["email"] for r in rows if r["mailbox_id"] in (None, mailbox)]
    return preview(
        campaign_id=campaign.id,
        status=campaign.status,
        has_mailbox=campaign.mailbox_id is not None,
        recipients=campaign.recipient_count,
        recipient_emails=emails,
        suppressed_emails=suppressed,
        first=first,
        template_error=template_error,
    )


def register(server: MCPServer, gw: Gateway) -> None:
    @server.tool(annotations=READ)
    async def dry_run(
        campaign_id: CampaignId,
        limit: Annotated[int, Field(ge=1, le=100, description="recipients to render")] = 3,
    ) -> DryRunResult:
        """Render the first recipients exactly as they would be sent (subject, HTML, text,
        headers) and list the tracked links. Nothing is sent."""
        answer = await gw.call("POST", f"/campaigns/{campaign_id}/dry-run", json={"limit": limit})
        return DryRunResult.model_validate(answer)

    @server.tool(annotations=SEND)
    async def test_send(
        campaign_id: CampaignId,
        email: Annotated[str, Field(description="where the test message goes")],
        name: str = "",
        attributes: dict[str, Any] | None = None,
    ) -> TestSendResult:
        """Send one message of the campaign to one address now (not a recipient, not put
        in Sent)."""
        body = {"email": email, "name": name, "attributes": attributes or {}}
        answer = await gw.call("POST", f"/campaigns/{campaign_id}/test-send", json=body)
        return TestSendResult.model_validate(answer)

    @server.tool(annotations=SEND)
    async def send_campaign(
        campaign_id: CampaignId,
        confirm: Annotated[
            bool, Field(description="true sends; false (the default) only says what would happen")
        ] = False,
        batch_size: BatchSize = None,
        sleep_between_batches_sec: Sleep = None,
    ) -> SendStarted | SendPreview:
        """Send the campaign to its recipients. Without confirm: true nothing is sent and the
        answer says what a send would do (recipients, suppressed, the first rendered
        subject, warnings). Ask the person before confirming."""
        if not confirm:
            return await _preview(gw, str(campaign_id))
        answer = await gw.call(
            "POST",
            f"/campaigns/{campaign_id}/send",
            json=_send_options(batch_size, sleep_between_batches_sec),
        )
        return SendStarted.model_validate(answer)

    @server.tool(annotations=COMMAND)
    async def schedule_campaign(
        campaign_id: CampaignId,
        send_at: Annotated[AwareDatetime, Field(description="when, with a time zone")],
        batch_size: BatchSize = None,
        sleep_between_batches_sec: Sleep = None,
    ) -> CampaignStatusPublic:
        """Send the campaign at send_at (in the future); unschedule_campaign takes it back."""
        body = {
            "send_at": datetime.isoformat(send_at),
            **_send_options(batch_size, sleep_between_batches_sec),
        }
        answer = await gw.call("POST", f"/campaigns/{campaign_id}/schedule", json=body)
        return CampaignStatusPublic.model_validate(answer)

    async def _command(campaign_id: CampaignId, verb: str) -> CampaignStatusPublic:
        answer = await gw.call("POST", f"/campaigns/{campaign_id}/{verb}", json={})
        return CampaignStatusPublic.model_validate(answer)

    @server.tool(annotations=COMMAND)
    async def unschedule_campaign(campaign_id: CampaignId) -> CampaignStatusPublic:
        """Take a scheduled campaign back to draft."""
        return await _command(campaign_id, "unschedule")

    @server.tool(annotations=COMMAND)
    async def pause_campaign(campaign_id: CampaignId) -> CampaignStatusPublic:
        """Stop sending after the messages in progress; resume_campaign carries on."""
        return await _command(campaign_id, "pause")

    @server.tool(annotations=SEND)
    async def resume_campaign(campaign_id: CampaignId) -> CampaignStatusPublic:
        """Carry on a paused campaign: every recipient without an outcome is sent to
        (never one already sent to)."""
        return await _command(campaign_id, "resume")

    @server.tool(annotations=COMMAND)
    async def cancel_campaign(campaign_id: CampaignId) -> CampaignStatusPublic:
        """Stop a scheduled, sending or paused campaign for good; the rest is not sent."""
        return await _command(campaign_id, "cancel")

    @server.tool(annotations=READ)
    async def campaign_status(campaign_id: CampaignId) -> CampaignStatusPublic:
        """Where sending stands: status, reason, and recipients queued, sent, failed,
        unknown, suppressed."""
        return await gw.get(CampaignStatusPublic, f"/campaigns/{campaign_id}/status")
