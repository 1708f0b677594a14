"""Replies and automatic replies: which of our messages they answer, and who sent them."""

from __future__ import annotations

import pytest

from pigeon_imap_sync.classify import classify
from pigeon_imap_sync.inbound import InboundKind
from tests.unit.imap_sync.mails import (
    CAMPAIGN,
    FOREIGN_ID,
    OTHER_ID,
    OTHER_RECIPIENT,
    OUR_ID,
    RECIPIENT,
    assert_single_lines,
    block,
    dsn,
    reply,
)


def test_in_reply_to_our_message_is_a_reply() -> None:
    raw = reply(f"Subject: Re: Spring news\nIn-Reply-To: <{OUR_ID}>\nReferences: <{OUR_ID}>\n")

    result = classify(raw)

    assert result.kind is InboundKind.REPLY
    assert result.references == ((CAMPAIGN, RECIPIENT),)
    assert result.sender == "alice@example.org"
    assert result.subject == "Re: Spring news"
    assert result.message_id == "reply-1@mail.example.org"
    assert result.recipients == ()
    assert_single_lines(result)


def test_references_with_several_ids_put_the_nearest_ancestor_first() -> None:
    # References runs from the thread's start to the parent: the last id is the nearest.
    raw = reply(
        f"Subject: Re: Re: Spring news\nReferences: <{FOREIGN_ID}> <{OUR_ID}>\n <{OTHER_ID}>\n"
    )

    result = classify(raw)

    assert result.kind is InboundKind.REPLY
    assert result.references == ((CAMPAIGN, OTHER_RECIPIENT), (CAMPAIGN, RECIPIENT))


def test_in_reply_to_comes_before_references() -> None:
    raw = reply(f"Subject: Re: news\nIn-Reply-To: <{OUR_ID}>\nReferences: <{OTHER_ID}>\n")

    assert classify(raw).references == ((CAMPAIGN, RECIPIENT), (CAMPAIGN, OTHER_RECIPIENT))


def test_a_reply_to_a_foreign_message_is_other_without_references() -> None:
    raw = reply(
        f"Subject: Re: lunch?\nIn-Reply-To: <{FOREIGN_ID}>\nReferences: <{FOREIGN_ID}>\n",
        body=f"On Monday you wrote in <{FOREIGN_ID}>:\n> lunch?\nSure.\n",
    )

    result = classify(raw)

    assert result.kind is InboundKind.OTHER
    assert result.references == ()
    assert result.sender == ""
    assert result.reason


def test_a_message_whose_own_id_looks_like_ours_does_not_refer_to_itself() -> None:
    raw = reply("Subject: hello\n").replace(b"<reply-1@mail.example.org>", f"<{OUR_ID}>".encode())

    result = classify(raw)

    assert result.kind is InboundKind.OTHER
    assert result.references == ()
    assert result.message_id == OUR_ID


def test_encoded_subject_and_sender_name_are_decoded() -> None:
    raw = reply(
        f"Subject: =?utf-8?q?Re=3A_Fr=C3=BChlingsgr=C3=BC=C3=9Fe?=\nIn-Reply-To: <{OUR_ID}>\n"
    ).replace(b"Alice Example", b"=?iso-8859-1?q?J=FCrgen?=")

    result = classify(raw)

    assert result.subject == "Re: Frühlingsgrüße"
    assert result.sender == "alice@example.org"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param("Auto-Submitted: auto-replied\nSubject: Re: Spring news\n", id="rfc3834"),
        pytest.param("Auto-Submitted: auto-generated (vacation)\nSubject: x\n", id="generated"),
        pytest.param("X-Autoreply: yes\nSubject: Re: Spring news\n", id="x-autoreply"),
        pytest.param("X-Autorespond: I am away\nSubject: Spring news\n", id="x-autorespond"),
        pytest.param("Precedence: auto_reply\nSubject: Spring news\n", id="precedence"),
        pytest.param("Subject: Automatic reply: Spring news\n", id="outlook-subject"),
        pytest.param("Subject: Out of Office: Spring news\n", id="out-of-office"),
        pytest.param("Subject: AUTO: Alice is out of the office\n", id="lotus-notes"),
        pytest.param("Subject: Abwesenheitsnotiz: Spring news\n", id="german"),
        pytest.param("Subject: =?utf-8?q?R=C3=A9ponse_automatique=3A_Spring_news?=\n", id="french"),
        pytest.param(
            "X-Auto-Response-Suppress: All\nSubject: Re: Spring news [Out of Office]\n",
            id="microsoft-suppress-with-subject",
        ),
        pytest.param(
            "Precedence: bulk\nSubject: Spring news - autoreply\n", id="bulk-with-subject"
        ),
    ],
)
def test_auto_replies_are_recognised(headers: str) -> None:
    raw = reply(f"{headers}In-Reply-To: <{OUR_ID}>\n", body="I am away until Monday.\n")

    result = classify(raw)

    assert result.kind is InboundKind.AUTO_REPLY
    assert result.references == ((CAMPAIGN, RECIPIENT),)
    assert result.sender == "alice@example.org"


def test_an_auto_reply_need_not_refer_to_our_message() -> None:
    result = classify(reply("Auto-Submitted: auto-replied\nSubject: Out of office\n"))

    assert result.kind is InboundKind.AUTO_REPLY
    assert result.references == ()
    assert result.sender == "alice@example.org"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param("Auto-Submitted: no\n", id="auto-submitted-no"),
        pytest.param("X-Autoreply: no\n", id="x-autoreply-no"),
        pytest.param("X-Auto-Response-Suppress: All\n", id="suppress-alone"),
        pytest.param("Precedence: bulk\n", id="bulk-alone"),
    ],
)
def test_weak_or_negative_markers_leave_a_reply_a_reply(headers: str) -> None:
    raw = reply(f"{headers}Subject: Re: Spring news\nIn-Reply-To: <{OUR_ID}>\n")

    assert classify(raw).kind is InboundKind.REPLY


def test_a_dsn_with_auto_submitted_and_an_out_of_office_subject_stays_a_bounce() -> None:
    raw = dsn(
        block("nobody@example.org", "failed", "5.1.1"),
        extra_headers="Auto-Submitted: auto-replied\nX-Autoreply: yes\n",
    ).replace(b"Subject: Undelivered Mail", b"Subject: Automatic reply: Undelivered Mail")

    result = classify(raw)

    assert result.kind is InboundKind.BOUNCE
    assert result.references == ((CAMPAIGN, RECIPIENT),)


def test_a_reply_quoting_a_bounce_notice_in_its_words_is_still_a_reply() -> None:
    # The bounce detectors look at the whole text; a person's words must not trip them.
    raw = reply(
        f"Subject: Re: Spring news\nIn-Reply-To: <{OUR_ID}>\n",
        body=(
            "Hi, my colleague bob@example.org says your mail did not arrive.\n"
            "Could you resend? The address is right.\n\n> Spring news\n"
        ),
    )

    assert classify(raw).kind is InboundKind.REPLY
