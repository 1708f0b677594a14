"""What `send` without confirm answers: what a send would do, decided from what the API
returned (pure, so every case is tested without servers)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from pigeon_common.validation import address_key

SENDABLE_STATUSES = ("draft", "scheduled")


class SendPreview(BaseModel):
    """Nothing was sent. `would_send` is what a confirmed send would try to deliver:
    recipients minus suppressed addresses (suppression is checked again at send time)."""

    campaign_id: uuid.UUID
    sent: bool = False
    status: str
    can_send: bool
    recipients: int
    suppressed: int
    suppressed_exact: bool
    would_send: int
    first_subject: str | None
    first_email: str | None
    warnings: list[str]
    how_to_send: str


def preview(
    *,
    campaign_id: uuid.UUID,
    status: str,
    has_mailbox: bool,
    recipients: int,
    recipient_emails: list[str],
    suppressed_emails: list[str],
    first: tuple[str, str] | None,
    template_error: str | None,
) -> SendPreview:
    """`recipient_emails` may be a first part of the list (then the suppressed count is a
    lower bound); `first` is the (email, rendered subject) of the first recipient."""
    suppressed_keys = {address_key(e) for e in suppressed_emails}
    suppressed = sum(1 for e in recipient_emails if address_key(e) in suppressed_keys)
    exact = len(recipient_emails) >= recipients
    warnings: list[str] = []
    if status not in SENDABLE_STATUSES:
        warnings.append(f"the campaign is {status}: only a draft or scheduled one can be sent")
    if not has_mailbox:
        warnings.append("the campaign has no mailbox: set mailbox_id first")
    if recipients == 0:
        warnings.append("the campaign has no recipients")
    if template_error:
        warnings.append(f"template: {template_error}")
    if not exact:
        warnings.append(
            f"suppressions were checked for the first {len(recipient_emails)} recipients only"
        )
    can_send = status in SENDABLE_STATUSES and has_mailbox and recipients > 0 and not template_error
    return SendPreview(
        campaign_id=campaign_id,
        status=status,
        can_send=can_send,
        recipients=recipients,
        suppressed=suppressed,
        suppressed_exact=exact,
        would_send=max(recipients - suppressed, 0) if can_send else 0,
        first_email=first[0] if first else None,
        first_subject=first[1] if first else None,
        warnings=warnings,
        how_to_send="call send_campaign again with confirm: true",
    )
