"""The hard/soft rule for failure reports (DESIGN invariant 3), step by step."""

from __future__ import annotations

import pytest

from pigeon_common.smtp_outcomes import HARD_BOUNCE_STATUSES
from pigeon_imap_sync.hardness import is_hard, status_in_text, verdict


@pytest.mark.parametrize("status", sorted(HARD_BOUNCE_STATUSES))
def test_every_hard_status_is_hard_whatever_the_words(status: str) -> None:
    assert verdict(status, "mailbox full, try again later") is True


@pytest.mark.parametrize(
    "status", ["5.7.1", "5.7.26", "5.3.4", "5.6.1", "5.2.2", "4.2.2", "4.1.1", "5.4.4"]
)
def test_other_specific_statuses_are_soft_whatever_the_words(status: str) -> None:
    assert verdict(status, "550 user unknown") is False


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        pytest.param("", "550 No such user here", True, id="unknown-user-words"),
        pytest.param("5.0.0", "mailbox unavailable: user unknown", True, id="generic-status"),
        pytest.param("5.3.0", "<a@example.org>... No such user", True, id="vague-status"),
        pytest.param("", "552 Quota exceeded for a@example.org", False, id="quota"),
        pytest.param("", "554 rejected as spam", False, id="spam"),
        pytest.param("5.0.0", "blocked by policy; user unknown", False, id="doubt-is-soft"),
        pytest.param("", "421 too busy", False, id="4xx-code"),
        pytest.param("4.0.0", "", False, id="4xx-status"),
        pytest.param("5.7.0", "", False, id="vague-security"),
        pytest.param("5.0.0", "", None, id="generic-says-nothing"),
        pytest.param("5.1.0", "", None, id="vague-address"),
        pytest.param("", "550 Requested action not taken", None, id="5xx-says-nothing"),
        pytest.param("", "", None, id="nothing"),
    ],
)
def test_words_decide_without_a_specific_status(
    status: str, text: str, expected: bool | None
) -> None:
    assert verdict(status, text) is expected


def test_the_default_applies_only_when_nothing_is_said() -> None:
    assert is_hard("", "", default=True) is True
    assert is_hard("", "", default=False) is False
    assert is_hard("", "mailbox full", default=True) is False
    assert is_hard("", "user unknown", default=False) is True


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
