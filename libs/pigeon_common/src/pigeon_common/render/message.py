"""The per-campaign and per-message facts both render paths share (everything but MIME).

`CampaignFacts` is what a campaign contributes to every message, checked once;
`plan_message` adds one recipient: ids, tracking URLs, the template context and the
render deadline. The fast and exact paths then differ only in how they turn these
into text and bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from pigeon_common.render.context import build_context, campaign_record
from pigeon_common.render.headers import format_date, header_text, wire_address, wire_domain
from pigeon_common.render.links import ClickUrls, is_trackable
from pigeon_common.render.message_id import make_message_id, mime_boundary, new_nonce
from pigeon_common.render.sandbox import Record, deadline_after
from pigeon_common.render.spec import CampaignSpec, RecipientSpec
from pigeon_common.render.tokens import TrackingSigner, tracking_urls


@dataclass(frozen=True)
class CampaignFacts:
    """Checked, header-safe campaign values and the link registry."""

    campaign_id: uuid.UUID
    record: Record
    tracker_base: str | None
    message_id_domain: str
    from_name: str
    from_address: str
    links: tuple[str, ...]
    link_index: dict[str, int]


def campaign_facts(spec: CampaignSpec, links: tuple[str, ...]) -> CampaignFacts:
    """Facts of `spec`; ValueError for a tracker base or address that cannot be used."""
    base = spec.public_base_url.rstrip("/") if spec.public_base_url else None
    if base is not None and not (base.isascii() and is_trackable(base)):
        raise ValueError(f"public_base_url must be an absolute ASCII http(s) URL: {base!r}")
    return CampaignFacts(
        campaign_id=spec.campaign_id,
        record=campaign_record(spec),
        tracker_base=base,
        message_id_domain=wire_domain(spec.message_id_domain),
        from_name=header_text(spec.from_name),
        from_address=wire_address(spec.from_address),
        links=links,
        link_index={url: index for index, url in enumerate(links)},
    )


class MessagePlan(NamedTuple):
    """One message before rendering: its ids, header facts, context and deadline.

    A named tuple: made once per recipient, where a frozen dataclass costs more.
    """

    message_id: str
    boundary: str
    date: str
    to_name: str
    to_address: str
    unsubscribe_url: str | None
    context: dict[str, Any]
    deadline: float


def plan_message(
    facts: CampaignFacts,
    signer: TrackingSigner,
    recipient: RecipientSpec,
    now: datetime | None,
    nonce: str | None,
) -> MessagePlan:
    """Everything about one recipient's message that does not depend on the templates."""
    nonce = new_nonce(nonce)
    message_id = make_message_id(
        facts.campaign_id, recipient.recipient_id, nonce, facts.message_id_domain
    )
    urls = None
    if facts.tracker_base is not None:
        urls = tracking_urls(facts.tracker_base, signer, facts.campaign_id, recipient.recipient_id)
    context = build_context(
        facts.record,
        recipient,
        message_id,
        facts.tracker_base,
        urls,
        ClickUrls(facts.links, facts.link_index, urls),
    )
    return MessagePlan(
        message_id=message_id,
        boundary=mime_boundary(nonce),
        date=format_date(now),
        to_name=header_text(recipient.name),
        to_address=wire_address(recipient.email),
        unsubscribe_url=urls.unsubscribe_url if urls else None,
        context=context,
        deadline=deadline_after(),
    )
