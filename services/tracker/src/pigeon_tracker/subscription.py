"""Whether a message's recipient is unsubscribed, and what a POST should change.

Pure decisions over read-model rows. The suppression of the address for the campaign's
mailbox is the truth of "unsubscribed now" (the `unsubscribes` row of one message does not
see a re-subscribe made from another message's page); a suppression for another reason
(hard bounce, added by hand) or for every mailbox cannot be lifted by the person.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pigeon_tracker.pages import PageKind

NIL_MAILBOX = uuid.UUID(int=0)
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
    blocked: bool  # suppressed for another reason, or for every mailbox
    message_unsubscribed: bool  # this message's URL was used and not undone on its page
    lifted: datetime | None  # creation time of the suppression a re-subscribe would lift


def subscription_of(
    campaign_id: uuid.UUID,
    recipient_id: uuid.UUID,
    email: str,
    mailbox_id: uuid.UUID | None,
    sender: str,
    unsubscribed_at: datetime | None,
    resubscribed_at: datetime | None,
    suppressions: Sequence[SuppressionRow],
) -> Subscription:
    own = next((s for s in suppressions if s.mailbox_key == (mailbox_id or NIL_MAILBOX)), None)
    unsubscribed = own is not None and own.reason == UNSUBSCRIBED and mailbox_id is not None
    blocked = not unsubscribed and bool(suppressions)
    return Subscription(
        campaign_id=campaign_id,
        recipient_id=recipient_id,
        email=email,
        mailbox_id=mailbox_id,
        sender=sender,
        unsubscribed=unsubscribed,
        blocked=blocked,
        message_unsubscribed=unsubscribed_at is not None and resubscribed_at is None,
        lifted=own.created_at if unsubscribed and own is not None else None,
    )


def page_for(sub: Subscription) -> PageKind:
    """The page a GET shows."""
    if sub.unsubscribed:
        return PageKind.UNSUBSCRIBED
    if sub.blocked:
        return PageKind.BLOCKED
    return PageKind.CONFIRM


Change = Literal["unsubscribe", "resubscribe"] | None


def change_for(sub: Subscription, action: Literal["unsubscribe", "resubscribe"]) -> Change:
    """The event a POST must publish, None when the read model already says so."""
    if action == "unsubscribe":
        if sub.unsubscribed or (sub.blocked and sub.message_unsubscribed):
            return None
        return "unsubscribe"
    return "resubscribe" if sub.unsubscribed else None


def page_after(sub: Subscription, action: Literal["unsubscribe", "resubscribe"]) -> PageKind:
    """The page a POST answers with (the state after it, whether or not it changed it)."""
    if action == "unsubscribe":
        return PageKind.BLOCKED if sub.blocked else PageKind.UNSUBSCRIBED
    if sub.unsubscribed:
        return PageKind.RESUBSCRIBED
    return page_for(sub)


def unsubscribe_msg_id(campaign_id: uuid.UUID, recipient_id: uuid.UUID) -> str:
    """JetStream message id of an unsubscribe: repeats within the window are stored once."""
    return f"unsub:{campaign_id}:{recipient_id}"


def resubscribe_msg_id(sub: Subscription) -> str:
    """Message id of a re-subscribe: one per suppression lifted (its creation time)."""
    lifted = int(sub.lifted.timestamp() * 1_000_000) if sub.lifted else 0
    return f"resub:{sub.campaign_id}:{sub.recipient_id}:{lifted}"
