"""Mailboxes: list, get, create (passwords are write-only), sync state, sync now."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server import MCPServer
from pydantic import BaseModel, Field, SecretStr

from pigeon_api.schemas.common import Page
from pigeon_api.schemas.connection import ConnectionTestPublic
from pigeon_api.schemas.engagement import MailboxSyncPublic, SyncReportPublic
from pigeon_api.schemas.mailboxes import MailboxPublic
from pigeon_mcp.gateway import Gateway
from pigeon_mcp.hints import CONTACT, CREATE, READ
from pigeon_mcp.tools.params import IdempotencyKey, Limit, MailboxId, Offset

Security = Literal["plain", "starttls", "tls"]
READ_PATH = "/mailboxes/{id}"


class ServerIn(BaseModel):
    """An SMTP or IMAP server and its login. The password is write-only: stored encrypted,
    never returned by any tool."""

    host: str
    port: Annotated[int, Field(ge=1, le=65535)]
    security: Security
    username: Annotated[str, Field(description="empty for an SMTP relay without AUTH")] = ""
    password: SecretStr = SecretStr("")

    def body(self) -> dict[str, object]:
        secret = self.password.get_secret_value()
        return {**self.model_dump(exclude={"password"}), "password": secret}


def register(server: MCPServer, gw: Gateway) -> None:
    @server.tool(annotations=READ)
    async def list_mailboxes(limit: Limit = 50, offset: Offset = 0) -> Page[MailboxPublic]:
        """The mailboxes campaigns are sent through (passwords are never shown)."""
        return await gw.get(Page[MailboxPublic], "/mailboxes", limit=limit, offset=offset)

    @server.tool(annotations=READ)
    async def get_mailbox(mailbox_id: MailboxId) -> MailboxPublic:
        """One mailbox: sender, SMTP and IMAP servers, folders, rate limits."""
        return await gw.get(MailboxPublic, f"/mailboxes/{mailbox_id}")

    @server.tool(annotations=CREATE)
    async def create_mailbox(
        name: str,
        from_address: Annotated[str, Field(description="the sender address")],
        smtp: ServerIn,
        imap: ServerIn,
        from_name: str = "",
        sent_folder: Annotated[str, Field(description="empty: the \\Sent folder")] = "",
        bounce_folder: Annotated[str, Field(description="where bounces and replies land")] = "",
        rate_per_hour: Annotated[int | None, Field(ge=1)] = None,
        append_to_sent: Literal["auto", "always", "never"] = "auto",
        idempotency_key: IdempotencyKey = None,
    ) -> MailboxPublic:
        """Connect a mailbox: its SMTP server sends, its IMAP server keeps the copies in Sent
        and the bounces. The passwords are stored encrypted and never echoed."""
        body = {
            "name": name,
            "from_name": from_name,
            "from_address": from_address,
            "smtp": smtp.body(),
            "imap": imap.body(),
            "sent_folder": sent_folder,
            "bounce_folder": bounce_folder,
            "rate_per_hour": rate_per_hour,
            "append_to_sent": append_to_sent,
        }
        answer = await gw.write(
            "POST", "/mailboxes", READ_PATH, json=body, idempotency_key=idempotency_key
        )
        return MailboxPublic.model_validate(answer)

    @server.tool(annotations=READ)
    async def mailbox_sync_state(mailbox_id: MailboxId) -> MailboxSyncPublic:
        """Where reading the mailbox's bounce folder stands: position, last error (an IMAP
        login or connection problem shows here), skipped mail."""
        return await gw.get(MailboxSyncPublic, f"/mailboxes/{mailbox_id}/sync")

    @server.tool(annotations=CONTACT)
    async def test_mailbox_connection(mailbox_id: MailboxId) -> ConnectionTestPublic:
        """Log in to the mailbox's SMTP and IMAP servers now and list its IMAP folders with
        their special-use flags, suggesting the Sent and bounce folders (nothing is sent
        or changed). Only the mailbox's owner or an admin may."""
        return ConnectionTestPublic.model_validate(
            await gw.call("POST", f"/mailboxes/{mailbox_id}/test")
        )

    @server.tool(annotations=CONTACT)
    async def sync_mailbox(mailbox_id: MailboxId) -> SyncReportPublic:
        """Read the mailbox's bounce folder now (bounces, delays, replies) and say what was
        found; an IMAP problem comes back as `error`."""
        return SyncReportPublic.model_validate(
            await gw.call("POST", f"/mailboxes/{mailbox_id}/sync")
        )
