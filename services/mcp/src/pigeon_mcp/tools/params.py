"""Parameter types the tools share (the API checks the values; these say what they are)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field

CampaignId = Annotated[uuid.UUID, Field(description="the campaign's id")]
RecipientId = Annotated[uuid.UUID, Field(description="the recipient's id")]
MailboxId = Annotated[uuid.UUID, Field(description="the mailbox's id")]
Limit = Annotated[int, Field(ge=1, le=1000, description="at most this many rows")]
Offset = Annotated[int, Field(ge=0, description="rows to skip (paging)")]
IdempotencyKey = Annotated[
    str | None,
    Field(
        max_length=200,
        description="any unique text; a retried call with the same key returns the first "
        "result instead of creating again",
    ),
]


class Done(BaseModel):
    """A command that answers no resource."""

    done: bool = True
    message: str
