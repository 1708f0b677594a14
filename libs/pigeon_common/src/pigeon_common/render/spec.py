"""What goes into rendering (a campaign and a recipient) and what comes out (a message)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CampaignSpec:
    """The parts of a campaign that rendering needs.

    `subject` is a Jinja template; `template_markdown` is Jinja + Markdown.
    `public_base_url` is the tracker's base (e.g. "https://t.example.com"): None means
    no tracking, no List-Unsubscribe header, no pixel and no unsubscribe footer.
    `message_id_domain` is the right side of every Message-ID (the from domain by default).
    """

    campaign_id: uuid.UUID
    name: str
    subject: str
    template_markdown: str
    from_name: str
    from_address: str
    public_base_url: str | None
    message_id_domain: str


@dataclass(frozen=True)
class RecipientSpec:
    """One recipient; every attribute is also reachable as `recipient.<attr>`."""

    recipient_id: uuid.UUID
    email: str
    name: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class RenderedMessage:
    """One ready message.

    `message_id` has no angle brackets ("<campaignId>.<recipientId>.<random>@<domain>"),
    `headers` holds every top-level header as it goes on the wire (decoded value), and
    `raw` is the complete RFC 5322 message with CRLF line endings, ready for SMTP DATA
    and IMAP APPEND. `html` and `text` are the decoded bodies (LF line endings).
    `envelope_from` and `envelope_to` are the SMTP MAIL FROM and RCPT TO addresses: the
    header addresses, an IDN domain in Punycode (no SMTPUTF8 needed).
    """

    message_id: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    raw: bytes
    envelope_from: str
    envelope_to: str
