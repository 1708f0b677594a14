"""Rendering campaign messages (DESIGN §3): templates, tracking tokens and MIME.

`compile_campaign(spec, signer).render(recipient)` is the fast path the sender uses;
`render_exact` is the slow reference it is tested against; `dry_run` does everything
but SMTP and APPEND. `TrackingSigner` makes and checks the tracker's tokens.
"""

from pigeon_common.render.compiled import CompiledCampaign, compile_campaign, dry_run
from pigeon_common.render.errors import TemplateError
from pigeon_common.render.exact import render_exact
from pigeon_common.render.message_id import parse_message_id
from pigeon_common.render.spec import CampaignSpec, RecipientSpec, RenderedMessage
from pigeon_common.render.text import html_to_text
from pigeon_common.render.tokens import TrackingSigner, TrackingUrls, tracking_urls

__all__ = [
    "CampaignSpec",
    "CompiledCampaign",
    "RecipientSpec",
    "RenderedMessage",
    "TemplateError",
    "TrackingSigner",
    "TrackingUrls",
    "compile_campaign",
    "dry_run",
    "html_to_text",
    "parse_message_id",
    "render_exact",
    "tracking_urls",
]
