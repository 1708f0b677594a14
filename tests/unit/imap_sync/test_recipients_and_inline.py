"""A recipient is an address, and report fields written inline in a text part are read."""

from __future__ import annotations

from pigeon_imap_sync.classify import classify
from pigeon_imap_sync.inbound import InboundKind
from pigeon_imap_sync.reasons import Reason

# Built after Amazon WorkMail's bounce layout: delivery status fields in text/plain.
INLINE = b"""From: MAILER-DAEMON@amazonses.example
To: sender@example.org
Subject: Delivery Status Notification (Failure)
Content-Type: text/plain; charset=utf-8

An error occurred while trying to deliver the mail to the following recipients:
nobody@example.net

Reporting-MTA: dns; a1-2.smtp-out.example
Action: failed
Final-Recipient: rfc822; nobody@example.net
Diagnostic-Code: smtp; 552 5.2.2 nobody@example.net mailbox is over quota
Status: 5.2.2
"""


def test_inline_report_fields_are_a_report() -> None:
    result = classify(INLINE)
    assert result.kind is InboundKind.BOUNCE
    [entry] = result.recipients
    assert (entry.email, entry.status, entry.reason, entry.hard) == (
        "nobody@example.net",
        "5.2.2",
        Reason.MAILBOX_FULL,
        False,
    )
    assert entry.evidence.startswith("diagnostic text")


def test_a_json_fragment_is_no_recipient() -> None:
    raw = INLINE.replace(
        b"rfc822; nobody@example.net", b'rfc822; "nobody@example.net"},{"status":"x'
    )
    assert all('"' not in entry.email for entry in classify(raw).recipients)


def test_a_quoted_message_id_is_no_recipient() -> None:
    raw = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: sender@example.org
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  nobody@example.net
    SMTP error from remote mail server after RCPT TO:<nobody@example.net>:
    550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown

------ This is a copy of the message, including all the headers. ------

Message-ID: <20240101.abc@mail.example.org>
Subject: hello
"""
    result = classify(raw)
    assert [entry.email for entry in result.recipients] == ["nobody@example.net"]
    assert result.recipients[0].reason is Reason.USER_UNKNOWN and result.recipients[0].hard
