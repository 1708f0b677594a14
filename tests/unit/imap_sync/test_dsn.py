"""RFC 3464 reports: kind, status, diagnostic, hard flag and the message they return."""

from __future__ import annotations

import pytest

from pigeon_imap_sync.classify import classify
from pigeon_imap_sync.inbound import Action, InboundKind
from tests.unit.imap_sync.mails import (
    CAMPAIGN,
    OTHER_ID,
    OTHER_RECIPIENT,
    OUR_ID,
    RECIPIENT,
    assert_single_lines,
    block,
    crlf,
    dsn,
    original_headers,
)

POSTFIX_NOTICE = """\
This is the mail system at host mx.sender.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@example.org>: host mx.example.org[203.0.113.5] said: 550 5.1.1
    <nobody@example.org>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)"""


def test_postfix_user_unknown_is_a_hard_bounce_matched_by_the_returned_headers() -> None:
    raw = dsn(
        block(
            "nobody@example.org",
            "failed",
            "5.1.1",
            "smtp; 550 5.1.1 <nobody@example.org>: Recipient address rejected:\n"
            " User unknown in virtual mailbox table",
            original="nobody@example.org",
        ),
        notice=POSTFIX_NOTICE,
        extra_headers="Auto-Submitted: auto-replied\n",
    )

    result = classify(raw)

    assert result.kind is InboundKind.BOUNCE  # Auto-Submitted does not make it an auto-reply
    [entry] = result.recipients
    assert entry.email == "nobody@example.org"
    assert entry.action is Action.FAILED
    assert entry.status == "5.1.1"
    assert entry.diagnostic == (
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert entry.hard
    assert result.references == ((CAMPAIGN, RECIPIENT),)
    assert result.subject == "Undelivered Mail Returned to Sender"
    assert result.message_id == "20261124090100.4ABC@mx.sender.example"
    assert result.sender == ""  # only replies have one
    assert_single_lines(result)


def test_exchange_recipient_not_found_returns_the_whole_message() -> None:
    returned = original_headers() + "\nHello Alice, spring is here.\n"
    raw = dsn(
        "Final-Recipient: rfc822;someone@contoso.example\n"
        "Action: failed\n"
        "Status: 5.1.10\n"
        "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not\n"
        " found by SMTP address lookup\n"
        "X-Display-Name: Someone\n",
        notice="Delivery has failed to these recipients or groups:",
        returned=returned,
        returned_type="message/rfc822",
        extra_headers="X-MS-Exchange-Message-Is-Ndr: \nAuto-Submitted: auto-replied\n",
    )

    result = classify(raw)

    assert result.kind is InboundKind.BOUNCE
    [entry] = result.recipients
    assert (entry.email, entry.status, entry.hard) == ("someone@contoso.example", "5.1.10", True)
    assert entry.diagnostic.startswith("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient")
    assert result.references == ((CAMPAIGN, RECIPIENT),)


def test_one_failed_and_one_delayed_recipient_is_a_bounce_listing_both() -> None:
    # RFC 3464 A.3: one report, several recipients with different outcomes.
    raw = dsn(
        block("nobody@example.org", "failed", "5.1.1", "smtp; 550 5.1.1 no such user"),
        block("slow@example.net", "delayed", "4.4.7", "smtp; 451 4.4.7 queue time exceeded"),
        block("fine@example.com", "delivered", "2.0.0"),
    )

    result = classify(raw)

    assert result.kind is InboundKind.BOUNCE
    assert [(e.email, e.action, e.status, e.hard) for e in result.recipients] == [
        ("nobody@example.org", Action.FAILED, "5.1.1", True),
        ("slow@example.net", Action.DELAYED, "4.4.7", False),
    ]


def test_only_delayed_recipients_make_a_deferral() -> None:
    raw = dsn(block("slow@example.net", "delayed", "4.4.1", "smtp; 421 4.4.1 no answer"))

    result = classify(raw)

    assert result.kind is InboundKind.DEFERRAL
    [entry] = result.recipients
    assert (entry.action, entry.status, entry.hard) == (Action.DELAYED, "4.4.1", False)
    assert result.references == ((CAMPAIGN, RECIPIENT),)


@pytest.mark.parametrize(
    ("status", "diagnostic", "expected_status", "hard"),
    [
        pytest.param("5.1.1", "smtp; 550 5.1.1 User unknown", "5.1.1", True, id="user-unknown"),
        pytest.param("5.1.2", "smtp; 550 5.1.2 bad domain", "5.1.2", True, id="bad-domain"),
        # Disabled: address-level, but it suppresses only when it repeats (`plan`).
        pytest.param("5.2.1", "smtp; 550 5.2.1 mailbox disabled", "5.2.1", False, id="disabled"),
        pytest.param(
            "5.7.1",
            "smtp; 550 5.7.1 Message rejected due to local policy",
            "5.7.1",
            False,
            id="policy",
        ),
        pytest.param(
            "5.7.1", "smtp; 554 5.7.1 Service unavailable; Client host blocked", "5.7.1", False
        ),
        pytest.param("5.2.2", "smtp; 552 5.2.2 Mailbox full", "5.2.2", False, id="full"),
        pytest.param("5.3.4", "smtp; 552 5.3.4 Message too big", "5.3.4", False, id="too-big"),
        pytest.param("5.6.0", "smtp; 550 5.6.0 bad content", "5.6.0", False, id="content"),
        pytest.param("4.2.2", "smtp; 452 4.2.2 Over quota", "4.2.2", False, id="4xx-failed"),
        pytest.param(None, "smtp; 550 5.1.1 <nobody@example.org>... User unknown", "5.1.1", True),
        # Without a status, the one the reason implies.
        pytest.param(None, "smtp; 550 user unknown", "5.1.1", True, id="no-status-user-unknown"),
        pytest.param(
            None, "smtp; 550 Requested action not taken", "5.0.0", False, id="no-evidence"
        ),
        pytest.param(
            "5.0.0",
            "smtp; 550-5.7.1 this message has been blocked as\n 550 5.7.1 likely spam",
            "5.7.1",
            False,
            id="generic-status-specific-diagnostic",
        ),
        pytest.param(
            "5.0.0", "X-Postfix; host said: 550 unknown user", "5.0.0", True, id="generic-words"
        ),
        pytest.param("5.0.0", None, "5.0.0", False, id="generic-nothing-else"),
    ],
)
def test_hard_only_when_the_address_is_bad(
    status: str | None, diagnostic: str | None, expected_status: str, hard: bool
) -> None:
    result = classify(dsn(block("nobody@example.org", "failed", status, diagnostic)))

    assert result.kind is InboundKind.BOUNCE
    [entry] = result.recipients
    assert (entry.status, entry.hard) == (expected_status, hard)


def test_original_recipient_wins_over_the_final_one() -> None:
    # Final-Recipient is after forwarding; Original-Recipient is the address we sent to.
    raw = dsn(
        block("alice@internal.example", "failed", "5.2.2", original="Alice@Example.org"),
    )

    [entry] = classify(raw).recipients

    assert entry.email == "Alice@Example.org"


def test_action_comments_and_nonstandard_words_are_understood() -> None:
    raw = dsn(
        "Final-Recipient: RFC822; <a@example.org>\nAction: failed (bad mailbox)\nStatus: 5.1.1\n",
        "Final-Recipient: rfc822; b@example.org\nAction: error\nStatus: 5.1.1\n",
        "Final-Recipient: x400; /S=nobody/O=example/C=GB/\nAction: failed\nStatus: 5.1.1\n",
    )

    result = classify(raw)

    assert [entry.email for entry in result.recipients] == ["a@example.org", "b@example.org"]


def test_diagnostic_is_one_line_of_at_most_500_characters() -> None:
    long_text = "\n ".join(["550 5.7.1 blocked because of a very long reason"] * 40)
    raw = dsn(block("nobody@example.org", "failed", "5.7.1", f"smtp; {long_text}"))

    [entry] = classify(raw).recipients

    assert len(entry.diagnostic) == 500
    assert entry.diagnostic.startswith("550 5.7.1 blocked")
    assert_single_lines(classify(raw))


def test_a_report_of_delivery_only_is_other_but_still_names_the_message() -> None:
    raw = dsn(block("fine@example.com", "delivered", "2.0.0", "smtp; 250 2.0.0 OK"))

    result = classify(raw)

    assert result.kind is InboundKind.OTHER
    assert result.recipients == ()
    assert "delivered" in result.reason
    assert result.references == ((CAMPAIGN, RECIPIENT),)


def test_our_message_id_is_found_in_the_notice_text_without_a_returned_part() -> None:
    raw = dsn(
        block("nobody@example.org", "failed", "5.1.1"),
        notice=f"Your message <{OTHER_ID}> to nobody@example.org was not delivered.",
        returned="Nothing returned here.",
        returned_type="text/plain",
    )

    result = classify(raw)

    assert result.references == ((CAMPAIGN, OTHER_RECIPIENT),)


def test_the_returned_message_comes_before_ids_quoted_elsewhere() -> None:
    raw = dsn(
        block("nobody@example.org", "failed", "5.1.1"),
        notice=f"An earlier message <{OTHER_ID}> bounced too.",
        returned=original_headers(OUR_ID),
    )

    result = classify(raw)

    assert result.references == ((CAMPAIGN, RECIPIENT), (CAMPAIGN, OTHER_RECIPIENT))


def test_a_global_delivery_status_with_a_utf8_address() -> None:
    # RFC 6533: the report is UTF-8 text, which the email package leaves unparsed.
    raw = crlf(
        "From: MAILER-DAEMON@mx.example.net\n"
        "Subject: Undeliverable\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=global-delivery-status; boundary="b"\n'
        "\n--b\nContent-Type: text/plain\n\nFailed.\n"
        "\n--b\nContent-Type: message/global-delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.net\n\n"
        "Final-Recipient: utf-8; jürgen@bücher.example\n"
        "Action: failed\nStatus: 5.1.1\n"
        "\n--b--\n"
    )

    [entry] = classify(raw).recipients

    assert (entry.email, entry.hard) == ("jürgen@bücher.example", True)


def test_a_bounce_forwarded_inside_another_message_is_still_read() -> None:
    inner = dsn(block("nobody@example.org", "failed", "5.1.1")).decode()
    raw = crlf(
        "From: helpdesk@example.net\nSubject: Fwd: Undelivered Mail\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="outer"\n\n'
        "--outer\nContent-Type: text/plain\n\nSee attached.\n"
        f"--outer\nContent-Type: message/rfc822\n\n{inner}\n--outer--\n"
    )

    result = classify(raw)

    assert result.kind is InboundKind.BOUNCE
    assert [entry.email for entry in result.recipients] == ["nobody@example.org"]
    assert result.references == ((CAMPAIGN, RECIPIENT),)
