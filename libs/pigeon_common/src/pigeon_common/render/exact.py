"""The exact path: the slow, obviously correct reference renderer.

It shares the meaning of the templates with the fast path (template.py compiles them
the same way, here on every call) but nothing of the output: each message's text part
is converted from its rendered HTML, and the standard library's `EmailMessage` writes
the headers and MIME structure. The tests hold the fast path to this one.

One policy detail: List-Unsubscribe holds `<URL>`s, which the standard library would
turn into RFC 2047 words when longer than a line; receivers do not decode those, so
the header is written unfolded (a line of up to 998 octets is allowed).
"""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, Policy
from typing import cast

from pigeon_common.render.characters import as_body
from pigeon_common.render.headers import header_text
from pigeon_common.render.message import campaign_facts, plan_message
from pigeon_common.render.mime import transfer_encoding
from pigeon_common.render.spec import CampaignSpec, RecipientSpec, RenderedMessage
from pigeon_common.render.template import HTML_ENV, SOURCE_ENV, prepare, render_field
from pigeon_common.render.text import html_to_text
from pigeon_common.render.tokens import TrackingSigner


class _UnfoldedHeader(UnstructuredHeader):
    """A header written exactly as set, never folded into encoded words."""

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"  # type: ignore[attr-defined]


_registry = HeaderRegistry()
# The registry mixes BaseHeader in itself, as it does for the standard header classes.
_registry.map_to_type("list-unsubscribe", cast(type[BaseHeader], _UnfoldedHeader))
POLICY = SMTP.clone(header_factory=_registry)


def render_exact(
    spec: CampaignSpec,
    signer: TrackingSigner,
    recipient: RecipientSpec,
    *,
    now: datetime | None = None,
    nonce: str | None = None,
) -> RenderedMessage:
    """The message for one recipient, built the slow and simple way."""
    templates = prepare(
        spec.subject,
        spec.template_markdown,
        tracking=spec.public_base_url is not None,
        combined=False,
    )
    facts = campaign_facts(spec, templates.links)
    plan = plan_message(facts, signer, recipient, now, nonce)
    subject = header_text(
        render_field(
            SOURCE_ENV.from_string(templates.subject), plan.context, plan.deadline, "subject"
        )
    )
    html = as_body(
        render_field(
            HTML_ENV.from_string(templates.html),
            plan.context,
            plan.deadline,
            "template_markdown",
            templates.body,
        )
    )
    text = html_to_text(html)

    message = EmailMessage(policy=POLICY)
    message["From"] = Address(display_name=facts.from_name, addr_spec=facts.from_address)
    message["To"] = Address(display_name=plan.to_name, addr_spec=plan.to_address)
    message["Subject"] = subject
    message["Date"] = plan.date
    message["Message-ID"] = f"<{plan.message_id}>"
    if plan.unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{plan.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text, subtype="plain", charset="utf-8", cte=transfer_encoding(text))
    message.add_alternative(html, subtype="html", charset="utf-8", cte=transfer_encoding(html))
    for part in message.iter_parts():
        del part["MIME-Version"]
    message.set_boundary(plan.boundary)
    return RenderedMessage(
        message_id=plan.message_id,
        subject=subject,
        html=html,
        text=text,
        headers={name: str(value) for name, value in message.items()},
        raw=message.as_bytes(),
        envelope_from=facts.from_address,
        envelope_to=plan.to_address,
    )
