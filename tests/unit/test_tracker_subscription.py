"""What the unsubscribe page shows and what a POST publishes, from read-model rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pigeon_tracker.pages import PageFacts, PageKind, render_page
from pigeon_tracker.subscription import (
    NIL_MAILBOX,
    Subscription,
    SuppressionRow,
    change_for,
    page_after,
    page_for,
    resubscribe_msg_id,
    subscription_of,
)

CAMPAIGN, RECIPIENT, MAILBOX = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
T1 = datetime(2025, 1, 1, tzinfo=UTC)
T2 = datetime(2025, 2, 1, tzinfo=UTC)


def sub(
    *suppressions: SuppressionRow,
    unsubscribed_at: datetime | None = None,
    resubscribed_at: datetime | None = None,
) -> Subscription:
    return subscription_of(
        CAMPAIGN,
        RECIPIENT,
        "Ann@Example.org",
        MAILBOX,
        "News",
        unsubscribed_at,
        resubscribed_at,
        list(suppressions),
    )


def test_subscribed_person() -> None:
    s = sub()
    assert page_for(s) is PageKind.CONFIRM
    assert change_for(s, "unsubscribe") == "unsubscribe"
    assert change_for(s, "resubscribe") is None
    assert page_after(s, "unsubscribe") is PageKind.UNSUBSCRIBED
    assert page_after(s, "resubscribe") is PageKind.CONFIRM


def test_unsubscribed_person_can_resubscribe_once_per_suppression() -> None:
    s = sub(SuppressionRow(MAILBOX, "unsubscribed", T1), unsubscribed_at=T1)
    assert page_for(s) is PageKind.UNSUBSCRIBED
    assert change_for(s, "unsubscribe") is None
    assert change_for(s, "resubscribe") == "resubscribe"
    assert page_after(s, "resubscribe") is PageKind.RESUBSCRIBED
    later = sub(SuppressionRow(MAILBOX, "unsubscribed", T2), unsubscribed_at=T1)
    assert resubscribe_msg_id(s) != resubscribe_msg_id(later)
    assert resubscribe_msg_id(s) == resubscribe_msg_id(
        sub(SuppressionRow(MAILBOX, "unsubscribed", T1))
    )


def test_unsubscribed_elsewhere_counts() -> None:
    # Unsubscribed through another campaign's message of the same mailbox.
    s = sub(SuppressionRow(MAILBOX, "unsubscribed", T1))
    assert page_for(s) is PageKind.UNSUBSCRIBED
    assert change_for(s, "unsubscribe") is None
    # Re-subscribed from another message's page: this message's row is stale, not the truth.
    s = sub(unsubscribed_at=T1)
    assert page_for(s) is PageKind.CONFIRM
    assert change_for(s, "unsubscribe") == "unsubscribe"


def test_other_suppressions_cannot_be_lifted_by_the_person() -> None:
    for row in (
        SuppressionRow(MAILBOX, "hard_bounce", T1),
        SuppressionRow(NIL_MAILBOX, "manual", T1),
    ):
        s = sub(row)
        assert page_for(s) is PageKind.BLOCKED
        assert change_for(s, "resubscribe") is None
        assert change_for(s, "unsubscribe") == "unsubscribe"  # their wish is still recorded
        assert page_after(s, "unsubscribe") is PageKind.BLOCKED
        recorded = sub(row, unsubscribed_at=T1)
        assert change_for(recorded, "unsubscribe") is None  # once


def test_pages_escape_what_they_show() -> None:
    facts = PageFacts(email='<script>alert("x")</script>@example.org', sender="A & B <news>")
    for kind in PageKind:
        html = render_page(kind, facts).decode()
        assert "<script>" not in html
        assert "&lt;script&gt;" in html and "A &amp; B &lt;news&gt;" in html
    confirm = render_page(PageKind.CONFIRM, facts).decode()
    assert 'method="post"' in confirm and "resubscribe" not in confirm
    unsubscribed = render_page(PageKind.UNSUBSCRIBED, facts).decode()
    assert 'name="action" value="resubscribe"' in unsubscribed
    assert "already" in unsubscribed
    assert "already" not in render_page(PageKind.UNSUBSCRIBED, PageFacts("a@b", "c", True)).decode()
