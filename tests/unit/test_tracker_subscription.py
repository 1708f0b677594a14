"""What the unsubscribe page shows and what a POST publishes, from read-model rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pigeon_common.read_models import NIL_MAILBOX
from pigeon_tracker.pages import PageFacts, PageKind, render_page
from pigeon_tracker.subscription import (
    Subscription,
    SuppressionRow,
    page_after,
    page_for,
    subscription_of,
)

CAMPAIGN, RECIPIENT, MAILBOX = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
T1 = datetime(2025, 1, 1, tzinfo=UTC)


def sub(*suppressions: SuppressionRow, mailbox: uuid.UUID | None = MAILBOX) -> Subscription:
    return subscription_of(
        CAMPAIGN, RECIPIENT, "Ann@Example.org", mailbox, "News", list(suppressions)
    )


def test_subscribed_person() -> None:
    s = sub()
    assert (s.unsubscribed, s.blocked) == (False, False)
    assert page_for(s) is PageKind.CONFIRM
    assert page_after(s, "unsubscribe") is PageKind.UNSUBSCRIBED
    assert page_after(s, "resubscribe") is PageKind.RESUBSCRIBED


def test_unsubscribed_through_any_message_of_the_mailbox() -> None:
    s = sub(SuppressionRow(MAILBOX, "unsubscribed", T1))
    assert (s.unsubscribed, s.blocked) == (True, False)
    assert page_for(s) is PageKind.UNSUBSCRIBED
    assert page_after(s, "resubscribe") is PageKind.RESUBSCRIBED
    # The unsubscribe of another mailbox does not count for this one.
    other = sub(SuppressionRow(uuid.uuid4(), "unsubscribed", T1))
    assert other.unsubscribed is False


def test_other_suppressions_cannot_be_lifted_by_the_person() -> None:
    for row in (
        SuppressionRow(MAILBOX, "hard_bounce", T1),
        SuppressionRow(MAILBOX, "manual", T1),
        SuppressionRow(NIL_MAILBOX, "manual", T1),
    ):
        s = sub(row)
        assert (s.unsubscribed, s.blocked) == (False, True)
        assert page_for(s) is PageKind.BLOCKED
        assert page_after(s, "unsubscribe") is PageKind.UNSUBSCRIBED  # their wish is recorded
        both = sub(row, SuppressionRow(MAILBOX, "unsubscribed", T1))
        assert (both.unsubscribed, both.blocked) == (True, True)
        assert page_for(both) is PageKind.UNSUBSCRIBED
        assert page_after(both, "resubscribe") is PageKind.BLOCKED  # still suppressed


def test_a_campaign_without_mailbox_is_never_unsubscribed_by_a_global_row() -> None:
    s = sub(SuppressionRow(NIL_MAILBOX, "unsubscribed", T1), mailbox=None)
    assert (s.unsubscribed, s.blocked) == (False, True)


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
