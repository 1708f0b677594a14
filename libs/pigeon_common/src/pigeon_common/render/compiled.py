"""The fast path: compile a campaign once, then fill its slots per recipient (DESIGN §3).

Per recipient this renders two compiled Jinja templates (the subject, and one that
yields HTML and text together), QP-encodes the two bodies and joins them with
pre-formatted header lines; no Markdown, no HTML parsing and no `EmailMessage`. A
template whose text part cannot be compiled (personalization inside a table, a
macro) converts each message's HTML instead: correct, and slower. The exact path
(exact.py) is the reference the tests hold this to.
"""

from __future__ import annotations

from datetime import datetime

from jinja2 import Template

from pigeon_common.render.characters import as_body
from pigeon_common.render.combined import split_output
from pigeon_common.render.errors import TemplateError
from pigeon_common.render.headers import (
    address_header,
    decoded_address,
    header_text,
    unstructured_header,
)
from pigeon_common.render.message import CampaignFacts, campaign_facts, plan_message
from pigeon_common.render.mime import assemble, content_type
from pigeon_common.render.spec import CampaignSpec, RecipientSpec, RenderedMessage
from pigeon_common.render.template import (
    HTML_ENV,
    SOURCE_ENV,
    CampaignTemplates,
    prepare,
    render_field,
)
from pigeon_common.render.text import collecting_whitespace, fill_text, html_to_text
from pigeon_common.render.tokens import TrackingSigner

LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"


class CompiledCampaign:
    """A campaign ready to render many recipients.

    `links` are the campaign's registered click destinations; a link's position is the
    link index its click tokens carry.
    """

    def __init__(self, spec: CampaignSpec, signer: TrackingSigner) -> None:
        self._templates: CampaignTemplates = prepare(
            spec.subject, spec.template_markdown, tracking=spec.public_base_url is not None
        )
        self._facts: CampaignFacts = campaign_facts(spec, self._templates.links)
        self._signer = signer
        self._subject: Template = SOURCE_ENV.from_string(self._templates.subject)
        combined = self._templates.combined
        self._combined: Template | None = (
            HTML_ENV.from_string(combined.source) if combined else None
        )
        self._html: Template = HTML_ENV.from_string(self._templates.html)
        facts = self._facts
        self._from_line = address_header("From", facts.from_name, facts.from_address)
        self._from_value = decoded_address(facts.from_name, facts.from_address)
        self.links: list[str] = list(self._templates.links)

    @property
    def text_compiled(self) -> bool:
        """Whether the text part is filled from a compiled template (else converted)."""
        return self._combined is not None

    def render(
        self, recipient: RecipientSpec, *, now: datetime | None = None, nonce: str | None = None
    ) -> RenderedMessage:
        """The message for one recipient; TemplateError when the data trips the template."""
        plan = plan_message(self._facts, self._signer, recipient, now, nonce)
        context, deadline = plan.context, plan.deadline
        subject = header_text(render_field(self._subject, context, deadline, "subject"))
        body = self._templates.body
        combined, template = self._templates.combined, self._combined
        if combined is not None and template is not None:
            output, collapse = collecting_whitespace(
                lambda: render_field(template, context, deadline, "template_markdown", body),
                combined.inline_statements,
            )
            html, layout = split_output(output)
            html, text = as_body(html), fill_text(layout, collapse)
        else:
            html = as_body(render_field(self._html, context, deadline, "template_markdown", body))
            text = html_to_text(html)

        to_value = decoded_address(plan.to_name, plan.to_address)
        headers = {
            "From": self._from_value,
            "To": to_value,
            "Subject": subject,
            "Date": plan.date,
            "Message-ID": f"<{plan.message_id}>",
        }
        lines = [
            self._from_line,
            address_header("To", plan.to_name, plan.to_address),
            unstructured_header("Subject", subject),
            f"Date: {plan.date}\r\n",
            f"Message-ID: <{plan.message_id}>\r\n",
        ]
        if plan.unsubscribe_url is not None:
            headers["List-Unsubscribe"] = f"<{plan.unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = LIST_UNSUBSCRIBE_POST
            lines.append(f"List-Unsubscribe: <{plan.unsubscribe_url}>\r\n")
            lines.append(f"List-Unsubscribe-Post: {LIST_UNSUBSCRIBE_POST}\r\n")
        headers["MIME-Version"] = "1.0"
        headers["Content-Type"] = content_type(plan.boundary)
        lines.append("MIME-Version: 1.0\r\n")
        return RenderedMessage(
            message_id=plan.message_id,
            subject=subject,
            html=html,
            text=text,
            headers=headers,
            raw=assemble("".join(lines), plan.boundary, text, html),
            envelope_from=self._facts.from_address,
            envelope_to=plan.to_address,
        )


def compile_campaign(spec: CampaignSpec, signer: TrackingSigner) -> CompiledCampaign:
    """Compile `spec` once; TemplateError for what its templates get wrong."""
    return CompiledCampaign(spec, signer)


def dry_run(campaign: CompiledCampaign, recipients: list[RecipientSpec]) -> list[RenderedMessage]:
    """Everything but SMTP and APPEND; TemplateError naming the first problem (and whom)."""
    messages = []
    for recipient in recipients:
        try:
            messages.append(campaign.render(recipient))
        except TemplateError as exc:
            raise exc.for_recipient(recipient.email) from None
    return messages
