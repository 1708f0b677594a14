"""The variables a campaign template sees (DESIGN §3), built once per message.

Records (sandbox.Record) rather than dicts: a data attribute named `items` is
`recipient.items`, and an undefined name reads "undefined variable 'recipient.citty'".
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from pigeon_common.render.links import CLICK_URLS, ClickUrls
from pigeon_common.render.sandbox import GLOBALS, Record
from pigeon_common.render.spec import CampaignSpec, RecipientSpec
from pigeon_common.render.tokens import TrackingUrls


class TrackingPixel(Markup):
    """The open-tracking `<img>`; its own type so the text part can leave it out cheaply."""

    __slots__ = ()


def tracking_pixel(open_url: str) -> TrackingPixel:
    """The 1x1 image whose fetch records an open ("" without tracking)."""
    if not open_url:
        return TrackingPixel("")
    return TrackingPixel(
        f'<img src="{escape(open_url)}" width="1" height="1" alt="" style="display:none">'
    )


def campaign_record(spec: CampaignSpec) -> Record:
    """`campaign`: id and name."""
    return Record({"id": str(spec.campaign_id), "name": spec.name}, "campaign", spec.name)


def recipient_record(recipient: RecipientSpec) -> Record:
    """`recipient`: email, name, id, attributes, and every attribute by its own name.

    The four fixed names win over attributes of the same name, which stay reachable
    as `recipient.attributes.<name>`.
    """
    attributes = recipient.attributes
    fields = {
        **attributes,
        "email": recipient.email,
        "name": recipient.name,
        "id": str(recipient.recipient_id),
        "attributes": Record(attributes, "recipient.attributes"),
    }
    return Record(fields, "recipient", recipient.email)


def build_context(
    campaign: Record,
    recipient: RecipientSpec,
    message_id: str,
    public_base_url: str | None,
    urls: TrackingUrls | None,
    clicks: ClickUrls,
) -> dict[str, Any]:
    """Every variable of DESIGN §3 for one message; URLs are "" without a tracker base."""
    open_url = urls.open_url if urls else ""
    return {
        **GLOBALS,
        "campaign": campaign,
        "recipient": recipient_record(recipient),
        "message": Record({"id": message_id}, "message", message_id),
        "public_base_url": public_base_url or "",
        "unsubscribe_url": urls.unsubscribe_url if urls else "",
        "open_url": open_url,
        "tracking_pixel": tracking_pixel(open_url),
        "track_url": clicks.track_url,
        CLICK_URLS: clicks,
    }
