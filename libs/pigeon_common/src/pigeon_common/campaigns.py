"""Campaign rules that hold wherever a command comes from (REST, CLI, MCP).

Pure functions over the campaign's current status: no I/O, no HTTP.
"""

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


# Once a campaign has started sending, its content and recipients are history.
EDITABLE = frozenset({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED})


class CampaignLockedError(Exception):
    """Raised when a campaign that has started sending would be edited or deleted."""

    def __init__(self, status: str, action: str) -> None:
        super().__init__(
            f"campaign is {status}: it has started sending, so it can no longer be {action}"
        )
        self.status = status
        self.action = action


def ensure_editable(status: str, action: str = "edited") -> None:
    """Raise CampaignLockedError unless a campaign in `status` may still change."""
    if status not in EDITABLE:
        raise CampaignLockedError(status, action)
