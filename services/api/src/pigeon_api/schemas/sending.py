"""Models of the campaign commands: dry run, test send, send, schedule, status, messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StrictFloat, StrictInt

from pigeon_api.schemas.common import EmailAddress, HeaderText, RequestModel
from pigeon_api.schemas.recipients import Attributes

BatchSize = Annotated[StrictInt, Field(ge=1, le=10_000)]
Sleep = Annotated[StrictFloat | StrictInt, Field(ge=0, le=3600)]


class DryRunRequest(RequestModel):
    limit: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    recipient_ids: list[uuid.UUID] | None = None


class RenderedPublic(BaseModel):
    recipient_id: uuid.UUID | None
    email: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]


class DryRunResult(BaseModel):
    """What would be sent: nothing is sent or appended by a dry run."""

    messages: list[RenderedPublic]
    links: list[str]


class TestSendRequest(RequestModel):
    email: EmailAddress
    name: HeaderText = ""
    attributes: Attributes = Field(default_factory=dict)


class TestSendResult(BaseModel):
    email: str
    message_id: str
    smtp_reply: str


class SendRequest(RequestModel):
    """`batch_size` recipients per chunk job and the pause between chunks; both default
    to PIGEON_BATCH_SIZE and PIGEON_SLEEP_BETWEEN_BATCHES_SEC."""

    batch_size: BatchSize | None = None
    sleep_between_batches_sec: Sleep | None = None


class ScheduleRequest(SendRequest):
    send_at: AwareDatetime


class SendStarted(BaseModel):
    campaign_id: uuid.UUID
    run_id: uuid.UUID
    recipients: int
    chunks: int
    status: str


class CampaignStatusPublic(BaseModel):
    campaign_id: uuid.UUID
    status: str
    reason: str
    send_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    recipients: int
    queued: int
    sent: int
    failed: int
    unknown: int
    suppressed: int
    copies_pending: int = Field(
        description="Sent messages whose copy waits to be filed in the Sent folder (the "
        "IMAP server refused or was away); filed when it is back."
    )


class MessagePublic(BaseModel):
    """A recipient's message: its sending outcome, then what followed (opens and clicks
    counted with machine ones, `human_*` without; `bounce` hard, soft or null)."""

    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    name: str
    status: str
    message_id: str | None
    smtp_code: int | None
    smtp_reply: str
    hard_bounce: bool
    appended: bool
    reason: str
    at: datetime | None
    opens: int
    human_opens: int
    clicks: int
    human_clicks: int
    bounce: str | None
    deferred: bool
    replied: bool
    auto_replied: bool
    unsubscribed: bool
    states: list[str]  # the later states that apply, as `state=` filters by them


class SuppressionCreate(RequestModel):
    email: EmailAddress
    mailbox_id: uuid.UUID | None = None
    detail: HeaderText = ""
