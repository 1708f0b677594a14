"""What an SMTP answer means for a recipient (DESIGN §2.1, §2.3)."""

from __future__ import annotations

import pytest

from pigeon_common.smtp_outcomes import (
    Phase,
    Verdict,
    classify_lost_connection,
    classify_reply,
    enhanced_status,
    is_hard_bounce,
)


@pytest.mark.parametrize(
    ("code", "reply", "hard"),
    [
        (550, "5.1.1 <a@example.com>: Recipient address rejected: User unknown", True),
        (550, "5.1.2 bad destination system", True),
        (551, "5.1.6 mailbox moved", True),
        (550, "5.2.1 mailbox disabled", True),
        (550, "No such user here", True),
        (552, "5.2.2 mailbox full", False),
        (554, "5.7.1 message rejected as spam", False),
        (550, "5.7.1 sender blocked by policy", False),
        (552, "5.3.4 message too large", False),
        (550, "Requested action not taken", False),
        (450, "4.1.1 user unknown, try later", False),
    ],
)
def test_hard_bounce_means_the_address_is_bad(code: int, reply: str, hard: bool) -> None:
    assert is_hard_bounce(code, reply) is hard


def test_enhanced_status_is_found_in_the_text() -> None:
    assert enhanced_status("250 2.0.0 Ok: queued") == "2.0.0"
    assert enhanced_status("550 no code here") is None


@pytest.mark.parametrize("phase", [Phase.ENVELOPE, Phase.DATA])
def test_temporary_replies_are_retried(phase: Phase) -> None:
    assert classify_reply(phase, 451, "4.3.0 later").verdict is Verdict.RETRY


def test_permanent_replies_fail_with_the_reply() -> None:
    outcome = classify_reply(Phase.DATA, 554, "5.7.1 spam")
    assert (outcome.verdict, outcome.code, outcome.reply) == (Verdict.FAILED, 554, "5.7.1 spam")


def test_authentication_failure_at_connect_pauses() -> None:
    assert classify_reply(Phase.CONNECT, 535, "5.7.8 bad credentials").verdict is Verdict.AUTH


def test_lost_connection_before_data_is_retried_after_data_unknown() -> None:
    assert classify_lost_connection(Phase.ENVELOPE, "reset").verdict is Verdict.RETRY
    assert classify_lost_connection(Phase.CONNECT, "refused").verdict is Verdict.RETRY
    unknown = classify_lost_connection(Phase.DATA, "reset")
    assert unknown.verdict is Verdict.UNKNOWN
    assert "DATA" in unknown.reply


def test_a_refused_sender_never_marks_the_recipient_a_hard_bounce() -> None:
    reply = "5.1.1 <news@example.com>: sender address rejected: user unknown"
    at_mail = classify_reply(Phase.MAIL, 550, reply)
    assert at_mail.verdict is Verdict.FAILED and at_mail.hard_bounce is False
    assert classify_reply(Phase.ENVELOPE, 550, reply).hard_bounce is True
