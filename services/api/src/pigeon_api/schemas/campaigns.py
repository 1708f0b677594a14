"""Campaign models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from pigeon_api.schemas.common import NonEmptyHeaderText, RequestModel, Subject, no_nul

MAX_TEMPLATE_CHARS = 512 * 1024
Template = Annotated[str, Field(max_length=MAX_TEMPLATE_CHARS), AfterValidator(no_nul)]


class CampaignCreate(RequestModel):
    name: NonEmptyHeaderText
    subject: Subject
    template_markdown: Template = ""
    mailbox_id: uuid.UUID | None = None


class CampaignUpdate(RequestModel):
    """Only the fields given change; only a draft or scheduled campaign can change."""

    name: NonEmptyHeaderText | None = None
    subject: Subject | None = None
    template_markdown: Template | None = None
    mailbox_id: uuid.UUID | None = None


class CampaignClone(RequestModel):
    """The clone's name (default: the original's with " (copy)")."""

    name: NonEmptyHeaderText | None = None


class CampaignPublic(BaseModel):
    id: uuid.UUID
    name: str
    subject: str
    template_markdown: str
    mailbox_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    shared_with: list[uuid.UUID]
    cloned_from: uuid.UUID | None
    status: str
    status_reason: str
    send_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    recipient_count: int
    created_at: datetime
    updated_at: datetime
