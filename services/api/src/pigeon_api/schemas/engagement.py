"""Models of what happened after sending: stats, opens, clicks, delivery events,
suppressions and mailbox syncs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

MessageState = Literal[
    "opened",
    "opened_human",
    "clicked",
    "clicked_human",
    "bounced",
    "bounced_hard",
    "bounced_soft",
    "deferred",
    "replied",
    "auto_replied",
    "unsubscribed",
]
DeliveryKind = Literal["bounced", "deferred", "replied", "auto_replied"]
SuppressionReason = Literal["unsubscribed", "hard_bounce", "soft_bounce", "manual"]


class LinkStats(BaseModel):
    link_index: int
    url: str
    clicks: int
    clicked: int
    clicked_human: int


class CampaignStats(BaseModel):
    """Unique recipients per outcome and engagement. Opens and clicks by image proxies,
    Apple Mail Privacy Protection, scanners, HEAD requests and fetches within 10 seconds of
    sending are machine ones; `opened` and `clicked` count every unique recipient,
    `*_human` only people. Rates are over delivered messages (sent minus bounced):
    `open_rate` = opened_human / delivered, `click_rate` = clicked_human / delivered.
    `bounce_reasons`: bounced recipients per bounce reason (`user_unknown`, `spam`...),
    only the reasons that occurred; a recipient bounced for two reasons counts in both."""

    campaign_id: uuid.UUID
    recipients: int
    sent: int
    failed: int
    unknown: int
    suppressed: int
    delivered: int
    opens: int
    opened: int
    opened_human: int
    opened_machine: int
    clicks: int
    clicked: int
    clicked_human: int
    bounced: int
    bounced_hard: int
    bounced_soft: int
    bounce_reasons: dict[str, int]
    deferred: int
    replied: int
    auto_replied: int
    unsubscribed: int
    open_rate: float
    click_rate: float
    links: list[LinkStats]


class OpenPublic(BaseModel):
    id: uuid.UUID
    recipient_id: uuid.UUID
    email: str | None
    at: datetime
    machine: bool
    machine_reason: str
    user_agent: str


class ClickPublic(OpenPublic):
    link_index: int
    url: str


class DeliveryEventPublic(BaseModel):
    id: str
    recipient_id: uuid.UUID
    email: str
    kind: DeliveryKind
    hard: bool
    status: str
    action: str
    diagnostic: str
    reason: str = Field(
        description="Why a message bounced (`user_unknown`, `spam`...); empty for other kinds"
    )
    from_address: str
    subject: str
    source: str
    at: datetime


class SuppressionPublic(BaseModel):
    email: str
    mailbox_id: uuid.UUID | None
    reason: str
    detail: str
    created_at: datetime


class SyncStatePublic(BaseModel):
    folder: str
    uidvalidity: int
    last_uid: int
    synced_at: datetime
    last_error: str


class MailboxSyncPublic(BaseModel):
    """Where imap-sync stands with a mailbox's bounce folder."""

    mailbox_id: uuid.UUID
    bounce_folder: str
    folders: list[SyncStatePublic]
    skipped: int


class SkippedMailPublic(BaseModel):
    """A mail in the bounce folder that yielded nothing: unparsed, or matching no message.
    Find it in the folder by its UID (under that UIDVALIDITY)."""

    source: str
    folder: str
    uidvalidity: int
    uid: int
    kind: str
    reason: str
    at: datetime


class SyncReportPublic(BaseModel):
    """What one "sync now" did."""

    mailbox_id: uuid.UUID
    folder: str
    read: int
    bounced: int
    deferred: int
    replied: int
    auto_replied: int
    skipped: int
    ignored: int
    uidvalidity: int
    last_uid: int
    busy: bool
    error: str
