"""Whether a message's recipient is unsubscribed, and which page answers a request.

Pure decisions over read-model rows. The `unsubscribed` suppression of the address for the
campaign's mailbox is the truth of "unsubscribed now" (the `unsubscribes` row of one message
does not see a re-subscribe made from another message's page); a suppression for another
reason (hard bounce, added by hand) or for every mailbox cannot be lifted by the person.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pigeon_tracker.pages import PageKind

UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True)
class SuppressionRow:
    mailbox_key: uuid.UUID
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class Subscription:
    """One message's recipient as the unsubscribe page sees them."""

    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    mailbox_id: uuid.UUID | None
    sender: str
    unsubscribed: bool  # suppressed for this mailbox because they unsubscribed
    blocked: bool  # also suppressed for another reason, or for every mailbox


def subscription_of(
    campaign_id: uuid.UUID,
    recipient_id: uuid.UUID,
    email: str,
    mailbox_id: uuid.UUID | None,
    sender: str,
    suppressions: Sequence[SuppressionRow],
) -> Subscription:
    """The state from the address's suppressions (one row per reason) for the campaign's
    mailbox and for every mailbox."""
    own = None
    if mailbox_id is not None:
        own = next(
            (s for s in suppressions if s.mailbox_key == mailbox_id and s.reason == UNSUBSCRIBED),
            None,
        )
    return Subscription(
        campaign_id=campaign_id,
        recipient_id=recipient_id,
        email=email,
        mailbox_id=mailbox_id,
        sender=sender,
        unsubscribed=own is not None,
        blocked=any(s is not own for s in suppressions),
    )


def page_for(sub: Subscription) -> PageKind:
    """The page a GET shows."""
    if sub.unsubscribed:
        return PageKind.UNSUBSCRIBED
    if sub.blocked:
        return PageKind.BLOCKED
    return PageKind.CONFIRM


def page_after(sub: Subscription, action: Literal["unsubscribe", "resubscribe"]) -> PageKind:
    """The page a POST answers with: the state once its event is applied."""
    if action == "unsubscribe":
        return PageKind.UNSUBSCRIBED
    return PageKind.BLOCKED if sub.blocked else PageKind.RESUBSCRIBED
