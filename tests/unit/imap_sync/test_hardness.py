"""Which reasons suppress (DESIGN invariant 4), and how a reason is read, step by step."""

from __future__ import annotations

from typing import get_args

import pytest

from pigeon_common.events import BounceReason
from pigeon_imap_sync.hardness import HARD_REASONS, is_hard, is_repeatable
from pigeon_imap_sync.inbound import Action
from pigeon_imap_sync.reasons import Reason, judge, reason_of_status, status_in_text


@pytest.mark.parametrize("reason", list(Reason))
def test_only_user_and_host_unknown_are_hard(reason: Reason) -> None:
    assert is_hard(Action.FAILED, reason) is (reason in HARD_REASONS)
    assert {Reason.USER_UNKNOWN, Reason.HOST_UNKNOWN} == HARD_REASONS


@pytest.mark.parametrize("reason", list(Reason))
def test_a_delayed_recipient_is_never_hard_nor_counted(reason: Reason) -> None:
    assert not is_hard(Action.DELAYED, reason)
    assert not is_repeatable(Action.DELAYED, reason)


def test_full_disabled_and_given_up_count_toward_the_repeat_limit() -> None:
    repeatable = {reason for reason in Reason if is_repeatable(Action.FAILED, reason)}
    assert repeatable == {Reason.MAILBOX_FULL, Reason.SUSPEND, Reason.EXPIRED}


@pytest.mark.parametrize(
    ("status_field", "diagnostic", "reason"),
    [
        # The remote server's words beat a generic or wrong Status field.
        pytest.param("5.1.1", "550 5.7.1 IP address blacklisted", Reason.BLOCKED, id="blacklist"),
        pytest.param("5.1.1", "552 5.2.2 Over quota", Reason.MAILBOX_FULL, id="quota"),
        pytest.param("5.0.0", "550 5.1.1 <a@b>: User unknown", Reason.USER_UNKNOWN, id="unknown"),
        # Its status beats the field when its words say nothing.
        pytest.param("5.0.0", "550 5.2.2 sorry", Reason.MAILBOX_FULL, id="diagnostic-status"),
        pytest.param("5.1.10", "", Reason.USER_UNKNOWN, id="o365-5.1.10"),
        pytest.param("5.4.4", "", Reason.HOST_UNKNOWN, id="aol-5.4.4"),
        pytest.param("", "550 5.1.351 Remote server said no", Reason.USER_UNKNOWN, id="5.1.351"),
        # Words about the message or sender come before the address in one text.
        pytest.param("", "550 user unknown, blocked by spamhaus", Reason.BLOCKED, id="doubt"),
        pytest.param("", "554 rejected: Blocked using spam pattern", Reason.SPAM, id="earliest"),
        pytest.param("", "553 5.1.1 Sender Policy Framework fail", Reason.AUTH_FAILURE, id="spf"),
        pytest.param("", "550 no PTR record for your IP", Reason.BLOCKED, id="rdns"),
        pytest.param("", "failed permanently: socket error", Reason.EXPIRED, id="socket"),
        pytest.param(
            "", "Recipient address rejected: Access denied", Reason.USER_UNKNOWN, id="o365"
        ),
        # A temporary status is never proof that the address is bad.
        pytest.param("4.1.1", "450 4.1.1 user unknown", Reason.EXPIRED, id="4xx-unknown"),
        pytest.param("", "550 Requested action not taken", Reason.REJECTED, id="5xx-alone"),
        pytest.param("", "", Reason.UNKNOWN, id="nothing"),
    ],
)
def test_judge(status_field: str, diagnostic: str, reason: Reason) -> None:
    assert judge(status_field, diagnostic).reason is reason


def test_context_is_read_after_the_statuses() -> None:
    judged = judge("5.2.2", "", "the user is unknown here")
    assert (judged.reason, judged.status) == (Reason.MAILBOX_FULL, "5.2.2")
    judged = judge("", "", "DNS Error: Domain name not found")
    assert judged.reason is Reason.HOST_UNKNOWN
    assert judged.evidence.startswith("bounce text")


def test_a_missing_status_is_implied_by_the_reason() -> None:
    assert judge("", "mailbox full").status == "5.2.2"
    assert judge("", "user unknown", failed=False).status == "4.0.0"
    assert "implied" in judge("", "user unknown").evidence


def test_vague_statuses_say_nothing() -> None:
    assert reason_of_status("5.0.0") is None
    assert reason_of_status("5.1.0") is None
    assert reason_of_status("5.7.26") is Reason.AUTH_FAILURE


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("550 5.1.1 <a@b>: User unknown", "5.1.1"),
        ("550-5.7.1 blocked", "5.7.1"),
        ("Sorry, no mailbox here by that name. (#5.1.1)", "5.1.1"),
        ("host 192.5.1.10 said: 550 unknown", ""),  # an IP address is no status
        ("[4.2.2.1] refused", ""),
        ("version 5.1.1.2 of the filter", ""),
        ("250 2.0.0 Ok", ""),  # success is not a failure status
        ("status 5.1.10 at the end.", "5.1.10"),
    ],
)
def test_status_in_free_text(text: str, status: str) -> None:
    assert status_in_text(text) == status


def test_the_vocabulary_is_the_one_message_bounced_carries() -> None:
    assert {str(reason) for reason in Reason} == set(get_args(BounceReason))
