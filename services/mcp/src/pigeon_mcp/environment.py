"""What an agent must know to write a campaign that tracks and unsubscribes correctly:
the tracker's public base URL, the URL forms it serves, and the template context."""

from __future__ import annotations

from pydantic import BaseModel

from pigeon_mcp.settings import McpSettings

TEMPLATE_CONTEXT: dict[str, str] = {
    "campaign.id, campaign.name": "the campaign; {{ campaign }} prints its name",
    "recipient.email, recipient.name, recipient.id": "the recipient; "
    "{{ recipient }} prints the address",
    "recipient.<attribute>": "an attribute imported with the recipient, e.g. recipient.city",
    "recipient.attributes.<attribute>": "the same, for attributes called email, name, id "
    "or attributes",
    "message.id": "the Message-ID without angle brackets",
    "public_base_url": "the tracker's base URL (empty without tracking)",
    "unsubscribe_url": "this recipient's unsubscribe page",
    "open_url": "this message's open-tracking image URL",
    "tracking_pixel": "the ready <img> for open_url",
}
TEMPLATE_HELPERS: dict[str, str] = {
    "track_url(url)": "the tracked click URL for a constant http(s) URL written in the template",
    "default(value)": "a fallback for an attribute only some recipients have: "
    "{{ recipient.nickname|default(recipient.name) }}",
    "Jinja2 filters and tests": "the built-in ones, with the globals range, dict, namespace, "
    "cycler and joiner",
}
TEMPLATE_RULES = [
    "Markdown links are rewritten to signed click URLs: write plain https links.",
    "The open pixel is appended and a visible unsubscribe link is added unless the template "
    "has them: never write tracking or unsubscribe URLs by hand.",
    "An undefined variable is an error, not an empty string: dry-run before sending.",
    "Recipient values are always inserted as text, never as Markdown or HTML.",
]


class UrlForms(BaseModel):
    """The tracker's URLs; <token> parts are signed per message and made by the renderer."""

    pixel: str
    click: str
    unsubscribe: str


class Environment(BaseModel):
    """The system an agent is writing campaigns for."""

    public_base_url: str
    api_url: str
    url_forms: UrlForms
    template_context: dict[str, str]
    template_helpers: dict[str, str]
    template_rules: list[str]


def public_base_url(settings: McpSettings) -> str:
    """The tracking base as the senders render it: PIGEON_PUBLIC_BASE_URL, or (as `pigeon up`
    does when it is unset) the local tracker's address."""
    return settings.tracking_base or f"http://{settings.tracker_host}:{settings.tracker_port}"


def environment(settings: McpSettings) -> Environment:
    base = public_base_url(settings)
    return Environment(
        public_base_url=base,
        api_url=settings.api_base + "/api/v1",
        url_forms=UrlForms(
            pixel=f"{base}/campaigns/o/<token>/p.png",
            click=f"{base}/campaigns/t/<token>/r/<token>/",
            unsubscribe=f"{base}/campaigns/unsub/<token>/",
        ),
        template_context=TEMPLATE_CONTEXT,
        template_helpers=TEMPLATE_HELPERS,
        template_rules=TEMPLATE_RULES,
    )
