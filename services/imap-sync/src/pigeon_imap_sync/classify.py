"""What a message found in a mailbox's bounce folder is: a pure function of its bytes.

`classify(raw)` never raises and does no I/O. It tries, in this order:

1. an RFC 3464 report (`dsn`): a failed recipient makes a BOUNCE, else a delayed one a
   DEFERRAL; a report of delivered, relayed or expanded recipients only is OTHER;
2. a non-standard bounce (`nonstandard`, flufl.bounce): permanent failures make a BOUNCE,
   temporary ones only a DEFERRAL;
3. an automatic reply (`autoreply`: RFC 3834 Auto-Submitted, out-of-office markers);
4. a reply: In-Reply-To or References names one of our messages (`references`);
5. OTHER.

A bounce's report comes first, so a DSN that carries Auto-Submitted stays a BOUNCE.

Each failed or delayed recipient gets a reason and its evidence (`reasons.judge`: the
remote server's own words and status first, then the Status field, then the notice's
text), and is hard only for an address-level reason (`hardness`: user or host unknown);
an unexplained failure is never hard. A report whose fields are written inline in a text
part (Amazon WorkMail, a broken multipart) is read like an RFC 3464 one.

`references` lists our messages the mail refers to, most reliable first, whatever its kind;
the caller matches them. `sender` is the From address of a REPLY or AUTO_REPLY only.

UNPARSED means: empty, no header at all (not a message), larger than `max_bytes` (only the
header of the first 64 KiB is read then: subject, Message-ID, In-Reply-To/References), or an
exception inside the classifier, whose type and text are the `reason`.
"""

from __future__ import annotations

import email
import re
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from pigeon_imap_sync import autoreply, dsn, generic, nonstandard, providers, templates
from pigeon_imap_sync.inbound import Action, BouncedRecipient, Inbound, InboundKind
from pigeon_imap_sync.mailtext import header_address, header_text, one_line
from pigeon_imap_sync.message_ids import without_message_ids
from pigeon_imap_sync.references import find_references, header_references, own_message_id

__all__ = ["DEFAULT_MAX_BYTES", "BouncedRecipient", "Inbound", "InboundKind", "classify"]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
HEADER_PEEK_BYTES = 64 * 1024
MAX_REASON_CHARS = 500
SUBJECT = "Subject"
_LEADING_BLANK_LINES = re.compile(rb"\A(?:[ \t]*\r?\n)+")
FROM = "From"


def classify(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Inbound:
    """The kind of the RFC 5322 message `raw`, its bounced recipients and our references."""
    try:
        if len(raw) > max_bytes:
            return _too_large(raw, max_bytes)
        if not raw.strip():
            return Inbound(InboundKind.UNPARSED, reason="empty message")
        # A message pasted or saved with blank lines before its header.
        raw = _LEADING_BLANK_LINES.sub(b"", raw, count=1)
        return _classify(email.message_from_bytes(raw, policy=compat32), raw)
    except Exception as exc:  # the contract: never raise; the reason keeps what went wrong
        return Inbound(InboundKind.UNPARSED, reason=_describe(exc))


def _classify(msg: Message, raw: bytes) -> Inbound:
    if not msg.keys():
        return Inbound(InboundKind.UNPARSED, reason="not a message: no header fields")
    subject = header_text(msg, SUBJECT)
    message_id = own_message_id(msg)
    report = dsn.read_report(msg)
    notification = providers.read_notification(msg) if report is None else None
    if report is not None:
        failures = report.failures
    elif notification is not None:
        failures = notification.failures
    else:
        failures = templates.read_template(msg) or nonstandard.read_bounce(msg, raw)
    failures = without_message_ids(failures, raw)
    if report is None and notification is None and not failures:
        failures = without_message_ids(generic.read_generic(msg), raw)
    if failures:
        return Inbound(
            _bounce_kind(failures),
            recipients=failures,
            references=find_references(msg, raw, returned_first=True),
            subject=subject,
            message_id=message_id,
        )
    references = find_references(msg, raw, returned_first=report is not None)
    if notification is not None:
        events = ", ".join(sorted(set(notification.events)))
        return Inbound(
            InboundKind.OTHER,
            references=references,
            subject=subject,
            message_id=message_id,
            reason=f"{notification.provider} notification without failures: {events}",
        )
    if report is not None:
        actions = ", ".join(sorted(report.other_actions))
        return Inbound(
            InboundKind.OTHER,
            references=references,
            subject=subject,
            message_id=message_id,
            reason=f"delivery report without failures: {actions}",
        )
    if autoreply.is_auto_reply(msg, subject):
        kind = InboundKind.AUTO_REPLY
    elif header_references(msg):
        kind = InboundKind.REPLY
    else:
        return Inbound(
            InboundKind.OTHER,
            references=references,
            subject=subject,
            message_id=message_id,
            reason="no bounce, automatic reply or reply to our messages",
        )
    return Inbound(
        kind,
        references=references,
        sender=header_address(msg, FROM),
        subject=subject,
        message_id=message_id,
    )


def _bounce_kind(failures: tuple[BouncedRecipient, ...]) -> InboundKind:
    if any(entry.action is Action.FAILED for entry in failures):
        return InboundKind.BOUNCE
    return InboundKind.DEFERRAL


def _too_large(raw: bytes, max_bytes: int) -> Inbound:
    # Only the header: parsing megabytes of attachments would be the cost the limit avoids.
    head = BytesHeaderParser(policy=compat32).parsebytes(raw[:HEADER_PEEK_BYTES])
    return Inbound(
        InboundKind.UNPARSED,
        references=header_references(head),
        subject=header_text(head, SUBJECT),
        message_id=own_message_id(head),
        reason=f"too large: {len(raw)} bytes, the limit is {max_bytes}",
    )


def _describe(exc: Exception) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # an exception whose str() fails
        text = type(exc).__name__
    return one_line(f"classifier failed: {text}", MAX_REASON_CHARS)
