"""Protocol words of the domain, named once: campaign and message statuses."""

from __future__ import annotations

from enum import StrEnum


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class MessageStatus(StrEnum):
    """A recipient's outcome; `queued` until the sender records one."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SUPPRESSED = "suppressed"


# Once a campaign has started sending, its content and recipients are history.
EDITABLE = frozenset({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED})
# Statuses in which recipients may still be waiting for an outcome.
IN_FLIGHT = frozenset({CampaignStatus.SENDING, CampaignStatus.PAUSED})
