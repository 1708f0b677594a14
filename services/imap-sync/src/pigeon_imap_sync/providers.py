"""Notifications of sending providers that arrive as mail with a JSON body or attachment.

Amazon SES (SNS notifications, also inside an SNS envelope, and event publishing),
SendGrid's Event Webhook, Mailgun's webhooks, Postmark's bounce and delivery webhooks and
SparkPost's message events, in the shapes their documentation gives. What each says:

- a delivery (SES `Delivery`, SendGrid `delivered`, Mailgun `delivered`, Postmark
  `Delivery`, SparkPost `delivery`) is no failure: the mail is OTHER, never a bounce;
- a permanent bounce is a failed recipient, with the provider's status and diagnostic (the
  remote server's words) read like any bounce; a failure the provider will retry
  (Mailgun `temporary`, SendGrid `deferred`, Postmark `Transient`) a delayed one, and a
  soft bounce it gave up on (SES `Transient`) a failed one that is never hard;
- the provider's own class of the bounce (SES `bounceSubType`, SparkPost `bounce_class`,
  Postmark `Type`) is the least trusted evidence, read only when the status and the
  diagnostic say nothing;
- a provider's refusal to send to an address it already suppresses (SendGrid `dropped`,
  Mailgun `suppress-*`) is not new evidence about the address, and a failure the provider
  classes as a block of the sender is never hard;
- a recipient is the address field of the notification, never any other JSON value.

Everything else (opens, clicks, complaints, sends) is OTHER.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr
from typing import Any

from pigeon_common.validation import MAX_ADDRESS_LENGTH
from pigeon_imap_sync.hardness import bounced_recipient
from pigeon_imap_sync.inbound import Action, BouncedRecipient
from pigeon_imap_sync.mailtext import part_text, walk_parts

MAX_JSON_CHARS = 512 * 1024
MAX_EVENTS = 100
_ADDRESS = re.compile(r"[^\s<>()\[\]{}\"',;:@\\]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_JSON_TYPES = frozenset({"application/json", "text/json", "text/plain"})

# The provider's class of a bounce, as words `reasons.judge` knows (least trusted).
_SES_SUBTYPES = {
    "noemail": "no such user",
    "mailboxfull": "mailbox full",
    "messagetoolarge": "message too large",
    "contentrejected": "content rejected",
    "attachmentrejected": "attachment rejected",
}
_SPARKPOST_CLASSES = {
    "10": "invalid recipient",
    "22": "mailbox full",
    "23": "message too large",
    "24": "timed out",
    "50": "blocked",
    "51": "spam",
    "52": "spam",
    "53": "attachment rejected",
    "54": "relaying denied",
}
_SPARKPOST_BLOCKS = frozenset({"50", "51", "52", "53", "54"})
_POSTMARK_FAILED = {
    "hardbounce": "",
    "badEmailaddress".lower(): "invalid address",
    "softbounce": "",
    "blocked": "blocked",
    "spamnotification": "spam",
    "virusnotification": "virus",
    "dmarcpolicy": "dmarc",
}
_POSTMARK_DELAYED = frozenset({"transient", "dnserror"})
_POSTMARK_NOT_HARD = frozenset({"softbounce", "blocked", "spamnotification", "virusnotification"})


@dataclass(frozen=True)
class Notification:
    """What the JSON notifications of one mail say."""

    provider: str
    failures: tuple[BouncedRecipient, ...]
    events: tuple[str, ...]  # every event named, failures included ("delivered", ...)


def read_notification(msg: Message) -> Notification | None:
    """The provider notification `msg` carries as JSON, or None when it carries none."""
    for part in walk_parts(msg):
        if part.is_multipart() or part.get_content_type() not in _JSON_TYPES:
            continue
        text = part_text(part)[:MAX_JSON_CHARS].strip()
        if not text.startswith(("{", "[")):
            continue
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            continue
        found = _read(document)
        if found is not None:
            return found
    return None


def _read(document: Any) -> Notification | None:
    items = document if isinstance(document, list) else [document]
    provider = ""
    failures: list[BouncedRecipient] = []
    events: list[str] = []
    for item in items[:MAX_EVENTS]:
        if not isinstance(item, dict):
            continue
        read = _event(_unwrap(item))
        if read is None:
            continue
        provider, event, entries = read
        events.append(event)
        failures += entries
    if not provider:
        return None
    return Notification(provider, tuple(failures), tuple(events))


def _unwrap(item: dict[str, Any]) -> dict[str, Any]:
    """An SNS envelope's notification ("Message" is JSON text), else `item`."""
    if item.get("Type") == "Notification" and isinstance(item.get("Message"), str):
        try:
            inner = json.loads(item["Message"][:MAX_JSON_CHARS])
        except (ValueError, RecursionError):
            return item
        if isinstance(inner, dict):
            return inner
    return item


Read = tuple[str, str, list[BouncedRecipient]]


def _event(item: dict[str, Any]) -> Read | None:
    for reader in (_ses, _mailgun, _sparkpost, _postmark, _sendgrid):
        found = reader(item)
        if found is not None:
            return found
    return None


def _ses(item: dict[str, Any]) -> Read | None:
    kind = _text(item.get("notificationType") or item.get("eventType"))
    if not kind or not isinstance(item.get("mail"), dict):
        return None
    event = kind.lower()
    if event != "bounce":
        return "Amazon SES", event, []
    bounce = _dict(item.get("bounce"))
    permanent = _text(bounce.get("bounceType")).lower() == "permanent"
    hint = _SES_SUBTYPES.get(_text(bounce.get("bounceSubType")).lower(), "")
    entries = []
    for rcpt in _list(bounce.get("bouncedRecipients")):
        row = _dict(rcpt)
        entries += _entry(
            row.get("emailAddress"),
            Action.FAILED,
            _text(row.get("status")),
            _text(row.get("diagnosticCode")),
            hint,
        )
    if not permanent:  # a soft bounce: SES gave up on this message, not on the address
        entries = [dataclasses.replace(entry, hard=False) for entry in entries]
    return "Amazon SES", event, entries


def _mailgun(item: dict[str, Any]) -> Read | None:
    data = item.get("event-data")
    if not isinstance(data, dict):
        if "signature" in item or "delivery-status" not in item:
            return None
        data = item  # an event without its webhook envelope
    event = _text(data.get("event")).lower()
    if not event:
        return None
    if event != "failed" or _text(data.get("reason")).lower().startswith("suppress"):
        return "Mailgun", event, []
    status = _dict(data.get("delivery-status"))
    temporary = _text(data.get("severity")).lower() == "temporary"
    diagnostic = " ".join(
        part for part in (_text(status.get("code")), _text(status.get("message"))) if part
    ) or _text(status.get("description"))
    entries = _entry(
        data.get("recipient"),
        Action.DELAYED if temporary else Action.FAILED,
        _text(status.get("enhanced-code")),
        diagnostic,
        _text(status.get("description")),
    )
    return "Mailgun", event, entries


def _sparkpost(item: dict[str, Any]) -> Read | None:
    msys = item.get("msys")
    if not isinstance(msys, dict):
        return None
    event = next((value for value in msys.values() if isinstance(value, dict)), None)
    if event is None:
        return None
    kind = _text(event.get("type")).lower()
    if kind not in {"bounce", "out_of_band", "delay"}:
        return "SparkPost", kind, []
    bounce_class = _text(event.get("bounce_class"))
    reason = _text(event.get("raw_reason") or event.get("reason"))
    entries = _entry(
        event.get("rcpt_to") or event.get("raw_rcpt_to"),
        Action.DELAYED if kind == "delay" else Action.FAILED,
        "",
        reason,
        _SPARKPOST_CLASSES.get(bounce_class, ""),
    )
    if bounce_class in _SPARKPOST_BLOCKS:
        entries = [dataclasses.replace(entry, hard=False) for entry in entries]
    return "SparkPost", kind, entries


def _postmark(item: dict[str, Any]) -> Read | None:
    record = _text(item.get("RecordType"))
    if not record:
        return None
    if record.lower() != "bounce":
        return "Postmark", record.lower(), []
    kind = _text(item.get("Type")).lower()
    if kind in _POSTMARK_DELAYED:
        action = Action.DELAYED
    elif kind in _POSTMARK_FAILED:
        action = Action.FAILED
    else:  # subscriptions, auto-responders, complaints: no delivery failure
        return "Postmark", kind or "bounce", []
    entries = _entry(
        item.get("Email"),
        action,
        "",
        _text(item.get("Details")),
        _POSTMARK_FAILED.get(kind, ""),
    )
    if kind in _POSTMARK_NOT_HARD:
        entries = [dataclasses.replace(entry, hard=False) for entry in entries]
    return "Postmark", "bounce", entries


def _sendgrid(item: dict[str, Any]) -> Read | None:
    event = _text(item.get("event")).lower()
    if not event or "email" not in item:
        return None
    if event not in {"bounce", "deferred"}:
        return "SendGrid", event, []  # delivered, dropped, open, click...
    blocked = _text(item.get("type")).lower() == "blocked"
    entries = _entry(
        item.get("email"),
        Action.DELAYED if event == "deferred" else Action.FAILED,
        _text(item.get("status")),
        _text(item.get("reason") or item.get("response")),
        "",
    )
    if blocked:
        entries = [dataclasses.replace(entry, hard=False) for entry in entries]
    return "SendGrid", event, entries


def _entry(
    value: Any, action: Action, status: str, diagnostic: str, hint: str
) -> list[BouncedRecipient]:
    address = _address(value)
    if not address:
        return []
    cleaned = re.sub(r"^[A-Za-z][A-Za-z0-9-]*\s*;\s*", "", diagnostic)  # "smtp; 550 ..."
    return [bounced_recipient(address, action, status, cleaned, hint)]


def _address(value: Any) -> str:
    """The address of a JSON address field ("a@b", "Name <a@b>"), '' for anything else."""
    if not isinstance(value, str) or len(value) > MAX_ADDRESS_LENGTH + 200:
        return ""
    _, address = parseaddr(value)
    if len(address) > MAX_ADDRESS_LENGTH or not _ADDRESS.fullmatch(address):
        return ""
    return address


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    return ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> Iterator[Any]:
    yield from (value if isinstance(value, list) else [])[:MAX_EVENTS]
