"""Builders and a stdlib parser view shared by the render tests."""

from __future__ import annotations

import email
import email.policy
import uuid
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import Any

from pigeon_common.render import CampaignSpec, RecipientSpec, RenderedMessage, TrackingSigner

SIGNER = TrackingSigner([b"unit test server secret"])
CAMPAIGN_ID = uuid.UUID("11111111-2222-3333-4444-555555555555")
BASE = "https://t.example.com"


def campaign(markdown: str = "Hello {{ recipient.name }}!", **changes: Any) -> CampaignSpec:
    spec = CampaignSpec(
        campaign_id=CAMPAIGN_ID,
        name="Spring news",
        subject="News for {{ recipient.name }}",
        template_markdown=markdown,
        from_name="Pigeon News",
        from_address="news@example.com",
        public_base_url=BASE,
        message_id_domain="example.com",
    )
    return replace(spec, **changes)


def recipient(
    name: str = "Ada Lovelace", email_address: str = "ada@example.org", **attributes: Any
) -> RecipientSpec:
    return RecipientSpec(
        recipient_id=uuid.uuid5(CAMPAIGN_ID, email_address),
        email=email_address,
        name=name,
        attributes=attributes,
    )


@dataclass(frozen=True)
class Parsed:
    """A rendered message as the standard library reads it back."""

    message: EmailMessage
    headers: dict[str, str]
    text: str
    html: str
    parts: list[EmailMessage]


def parse(rendered: RenderedMessage) -> Parsed:
    message = email.message_from_bytes(rendered.raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    text, html = (part.get_content().replace("\r\n", "\n") for part in parts)
    return Parsed(
        message=message,
        headers={name: str(value) for name, value in message.items()},
        text=text,
        html=html,
        parts=parts,  # type: ignore[arg-type]
    )
