"""imap-sync's settings: the shared base, how mail servers are reached, and its own."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from pigeon_common.settings import MailServerAccess, Port, SharedSettings


class ImapSyncSettings(SharedSettings, MailServerAccess):
    """What imap-sync reads."""

    service: ClassVar[str] = "imap-sync"

    imap_sync_host: str = Field(
        default="127.0.0.1", description="Address of imap-sync's health endpoints."
    )
    imap_sync_port: Port = Field(
        default=8029, description="Port of imap-sync's /healthz and /readyz."
    )
    imap_sync_interval: Annotated[float, Field(ge=1, le=86_400)] = Field(
        default=60.0,
        description="Seconds between two syncs of a mailbox's bounce folder when the IMAP "
        "server has no IDLE (with IDLE, new mail is read as it arrives and this is the "
        "longest wait between full checks).",
    )
    imap_sync_idle: bool = Field(
        default=True, description="Use IMAP IDLE where the server offers it."
    )
    imap_processed_folder: str = Field(
        default="",
        description="Folder that processed bounce-folder mail is moved to (created if "
        "missing); empty leaves it in place. Mail is never deleted.",
    )
    soft_bounce_limit: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3,
        description="Full-mailbox or given-up temporary bounces of one address (on "
        "different messages of one mailbox, within soft_bounce_window_days) after which it "
        "is suppressed; policy, spam, content and size rejections never count.",
    )
    soft_bounce_window_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=30, description="Days over which soft bounces are counted."
    )
