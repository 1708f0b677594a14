"""Classified mail to events: the suppression rule and re-read-proof message ids."""

from __future__ import annotations

import uuid

import pytest

from pigeon_common import events as ev
from pigeon_imap_sync.hardness import bounced_recipient
from pigeon_imap_sync.inbound import Action, BouncedRecipient, Inbound, InboundKind
from pigeon_imap_sync.plan import (
    MessageRef,
    Source,
    bounce_event,
    repeatable,
    reply_event,
    skipped_event,
    suppresses,
)

MAILBOX = uuid.UUID("20000000-0000-4000-8000-000000000001")
REF = MessageRef(uuid.uuid4(), uuid.uuid4(), "ann@example.org", MAILBOX)
SOURCE = Source(MAILBOX, "Bounces", 7, 42)


def bounced(
    status: str, *, hard: bool, action: Action = Action.FAILED, diagnostic: str = "x"
) -> BouncedRecipient:
    # The reason is read as the classifier reads it; `hard` says what the test expects.
    entry = bounced_recipient("ann@example.org", action, status, diagnostic)
    assert entry.hard is hard
    return entry


def test_a_hard_bounce_suppresses_at_once() -> None:
    assert suppresses(bounced("5.1.1", hard=True), earlier_soft_bounces=0, soft_limit=3)


@pytest.mark.parametrize(("earlier", "expected"), [(0, False), (1, False), (2, True), (5, True)])
def test_soft_bounces_suppress_on_the_limit_th(earlier: int, expected: bool) -> None:
    assert suppresses(bounced("5.2.2", hard=False), earlier, soft_limit=3) is expected


@pytest.mark.parametrize(
    ("status", "diagnostic", "counts"),
    [
        ("5.2.2", "mailbox full", True),
        ("4.2.2", "over quota", True),
        ("4.4.7", "delivery time expired", True),  # a temporary failure given up on
        ("5.0.0", "552 Mailbox is full", True),
        ("", "user over quota", True),
        ("5.7.1", "rejected as spam", False),
        ("5.7.1", "550 5.7.1 denied", False),  # a specific cause other than the mailbox
        ("5.2.1", "mailbox disabled", True),  # disabled: address-level, counted
        ("5.3.4", "message too large", False),
        ("5.6.0", "content rejected", False),
        ("", "blocked by policy", False),
        ("5.0.0", "550 Requested action not taken", False),  # no reason given
        ("", "", False),
    ],
)
def test_only_full_or_disabled_mailboxes_and_given_up_delays_count_toward_the_limit(
    status: str, diagnostic: str, counts: bool
) -> None:
    soft = bounced(status, hard=False, diagnostic=diagnostic)
    assert repeatable(soft) is counts
    assert suppresses(soft, earlier_soft_bounces=5, soft_limit=3) is counts
    planned = bounce_event(REF, soft, SOURCE, suppress=False)
    assert isinstance(planned.event, ev.MessageBounced) and planned.event.repeatable is counts


def test_a_delay_never_suppresses() -> None:
    delayed = bounced("4.4.1", hard=False, action=Action.DELAYED)
    assert not suppresses(delayed, earlier_soft_bounces=10, soft_limit=1)


def test_a_failure_becomes_a_bounce_and_a_delay_a_deferral() -> None:
    failed = bounce_event(REF, bounced("5.1.1", hard=True), SOURCE, suppress=True)
    assert isinstance(failed.event, ev.MessageBounced)
    assert failed.event.suppress and failed.event.hard and failed.event.mailbox_id == MAILBOX
    assert failed.event.source == f"{MAILBOX}:7:42"
    delayed = bounce_event(
        REF, bounced("4.4.1", hard=False, action=Action.DELAYED), SOURCE, suppress=False
    )
    assert isinstance(delayed.event, ev.MessageDeferred)
    assert failed.msg_id != delayed.msg_id


def test_message_ids_depend_only_on_the_mail_and_the_message() -> None:
    one = bounce_event(REF, bounced("5.1.1", hard=True), SOURCE, suppress=True)
    again = bounce_event(REF, bounced("5.1.1", hard=True), SOURCE, suppress=True)
    other_uid = bounce_event(
        REF, bounced("5.1.1", hard=True), Source(MAILBOX, "Bounces", 7, 43), suppress=True
    )
    assert one.msg_id == again.msg_id != other_uid.msg_id


def test_replies_and_auto_replies_keep_one_line_fields() -> None:
    inbound = Inbound(
        kind=InboundKind.AUTO_REPLY,
        sender="ann@example.org",
        subject="Out\r\nof   office",
        message_id="m@x",
    )
    planned = reply_event(REF, inbound, SOURCE)
    assert isinstance(planned.event, ev.MessageAutoReplied)
    assert planned.event.subject == "Out of office"
    replied = reply_event(REF, Inbound(kind=InboundKind.REPLY, sender="a@b.c"), SOURCE)
    assert isinstance(replied.event, ev.MessageReplied)


def test_skipped_mail_is_recorded_with_its_place() -> None:
    planned = skipped_event(SOURCE, "unparsed", "")
    assert isinstance(planned.event, ev.InboundSkipped)
    assert (planned.event.uid, planned.event.reason) == (42, "unparsed")
    assert planned.aggregate_id == str(MAILBOX)
