"""Messages as mail servers write them, for the classifier tests.

The reports follow the examples of RFC 3464 Appendix A and what Postfix and Exchange send;
every message is built as text with CRLF line ends, as it arrives over IMAP.
"""

from __future__ import annotations

import uuid

from pigeon_common.render.message_id import make_message_id
from pigeon_imap_sync.inbound import Inbound

CAMPAIGN = uuid.UUID("11111111-2222-3333-4444-555555555555")
RECIPIENT = uuid.UUID("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
OTHER_RECIPIENT = uuid.UUID("99999999-8888-7777-6666-555555555555")
OUR_ID = make_message_id(CAMPAIGN, RECIPIENT, "n0nce1", "mail.sender.example")
OTHER_ID = make_message_id(CAMPAIGN, OTHER_RECIPIENT, "n0nce2", "mail.sender.example")
FOREIGN_ID = "CAF=x1y2z3@mail.gmail.example"
BOUNDARY = "=_report_boundary"


def crlf(text: str) -> bytes:
    """`text` (LF line ends, UTF-8) as the bytes of a message with CRLF line ends."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def original_headers(message_id: str = OUR_ID, to: str = "nobody@example.org") -> str:
    """The header of the campaign message a report returns."""
    return (
        "From: Pigeon News <news@sender.example>\n"
        f"To: {to}\n"
        "Subject: Spring news\n"
        "Date: Tue, 24 Nov 2026 09:00:00 +0000\n"
        f"Message-ID: <{message_id}>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
    )


def dsn(
    *recipient_blocks: str,
    notice: str = "Your message could not be delivered.",
    returned: str | None = None,
    returned_type: str = "text/rfc822-headers",
    extra_headers: str = "",
) -> bytes:
    """A multipart/report delivery status notification with these per-recipient blocks."""
    returned_text = original_headers() if returned is None else returned
    blocks = "\n".join(block.strip("\n") + "\n" for block in recipient_blocks)
    return crlf(
        "From: Mail Delivery System <MAILER-DAEMON@mx.sender.example>\n"
        "To: bounces@sender.example\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Date: Tue, 24 Nov 2026 09:01:00 +0000\n"
        "Message-ID: <20261124090100.4ABC@mx.sender.example>\n"
        f"{extra_headers}"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{BOUNDARY}"\n'
        "\n"
        f"--{BOUNDARY}\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        f"{notice}\n"
        "\n"
        f"--{BOUNDARY}\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.sender.example\n"
        "Arrival-Date: Tue, 24 Nov 2026 09:00:00 +0000\n"
        "\n"
        f"{blocks}"
        "\n"
        f"--{BOUNDARY}\n"
        f"Content-Type: {returned_type}\n"
        "\n"
        f"{returned_text}\n"
        f"--{BOUNDARY}--\n"
    )


def block(
    recipient: str,
    action: str,
    status: str | None,
    diagnostic: str | None = None,
    original: str | None = None,
) -> str:
    """One per-recipient field block; None leaves a field out."""
    lines = []
    if original is not None:
        lines.append(f"Original-Recipient: rfc822;{original}")
    lines.append(f"Final-Recipient: rfc822; {recipient}")
    lines.append(f"Action: {action}")
    if status is not None:
        lines.append(f"Status: {status}")
    lines.append("Remote-MTA: dns; mx.example.org")
    if diagnostic is not None:
        lines.append(f"Diagnostic-Code: {diagnostic}")
    return "\n".join(lines) + "\n"


def reply(headers: str, body: str = "Thanks, see you there!\n") -> bytes:
    """A message from a person (or their auto-responder) with these extra header lines."""
    return crlf(
        "From: Alice Example <alice@example.org>\n"
        "To: Pigeon News <news@sender.example>\n"
        "Date: Tue, 24 Nov 2026 10:00:00 +0100\n"
        "Message-ID: <reply-1@mail.example.org>\n"
        f"{headers}"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        f"{body}"
    )


def strings_of(inbound: Inbound) -> list[str]:
    """Every string a classification holds, recipients' fields included."""
    found = [inbound.sender, inbound.subject, inbound.message_id, inbound.reason]
    for entry in inbound.recipients:
        found += [entry.email, entry.action, entry.status, entry.diagnostic]
    return found


def assert_single_lines(inbound: Inbound) -> None:
    """No string of `inbound` could split a header or a log line."""
    for text in strings_of(inbound):
        assert not any(mark in text for mark in ("\r", "\n", "\x85", "\u2028", "\u2029")), text
