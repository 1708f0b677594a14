"""Bounces of no known template: a mail system's notice about addresses it could not
deliver to, read when no report, provider notification, template or flufl.bounce
detector found a recipient.

A message is such a notice when it comes from a mail system (a From of MAILER-DAEMON,
postmaster, "Mail Delivery System"..., or the null sender `<>`) or says so in its subject
("Undeliverable", "Returned mail", "failure notice"...), is no automatic reply, and its
notice says that delivery failed or why (words of a `reasons.Reason`). Its recipients
are then, in order:

1. the addresses of X-Failed-Recipients (Exim and Google write it);
2. else the addresses the notice names (its own text parts, never an attached message,
   up to a returned message or pasted header), except the notice's own correspondents
   (From, To, Reply-To, Return-Path...: the sender it returns mail to is no failed
   recipient), mail-system mailboxes (postmaster, MAILER-DAEMON...) and any address on
   a From, Sender or Reply-To line; more than `MAX_RECIPIENTS` means a list or a digest,
   not a notice, and gives none.

Each failed (or, under a "delayed" or "warning" subject, delayed) recipient's diagnostic
is the paragraph of the notice about it. Nothing here says the address is bad on its
own: the reason is read from the words like any bounce's, and without words it is
`rejected` or `unknown`, which never suppress.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from email.utils import getaddresses

from pigeon_imap_sync.autoreply import SUBJECT_MARKERS
from pigeon_imap_sync.hardness import bounced_recipient
from pigeon_imap_sync.inbound import Action, BouncedRecipient
from pigeon_imap_sync.mailtext import header_text, part_text
from pigeon_imap_sync.paragraph import notice_text, paragraph_about
from pigeon_imap_sync.reasons import reason_in_text

NOTICE_CHARS = 32 * 1024
MAX_RECIPIENTS = 5
_DAEMON_FROM = re.compile(
    r"mailer-daemon|postmaster|mail ?delivery|mail ?system|mdaemon|\bmailer\b|"
    r"system administrator|mail administrator",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|non-?deliver|returned mail|mail delivery|failure notice|"
    r"delivery (?:status|failure|failed|notification|problem|report|error)|"
    r"not (?:be )?delivered|could not be delivered|delivery has failed|mail system error|"
    r"returned to sender|\bbounced?\b",
    re.IGNORECASE,
)
_DELAY_SUBJECT = re.compile(r"\bdelay|\bwarning\b|\bretry", re.IGNORECASE)
_FAILURE_WORDS = re.compile(
    r"(?:could ?n[o']t|cannot|can't|unable to|was not|wasn't|were not) (?:be )?deliver|"
    r"undeliverable|delivery (?:to [^\n]{0,80})?(?:has )?failed|failed permanently|"
    r"permanent (?:error|failure|fatal)|(?:was|were|been) rejected|not delivered|"
    r"did not reach|returned to sender|delivery (?:problems|errors?)\b",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"(?<![\w.+=-])[\w.+=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]+\b")
# Mailboxes of mail systems, never a failed recipient in their own notice.
_SYSTEM_LOCAL = re.compile(
    r"^(?:mailer-daemon|postmaster|root|noreply|no-reply|donotreply|do-not-reply|abuse|"
    r"bounces?|daemon|mail-daemon|mailerdaemon)$",
    re.IGNORECASE,
)
# Lines naming a correspondent or starting a pasted header, not a failed recipient.
_CORRESPONDENT_LINE = re.compile(
    r"^[ \t>]*(?:from|sender|reply-to|return-path|envelope-from|mail from)[ \t]*:.*$",
    re.IGNORECASE | re.MULTILINE,
)
_PASTED_HEADER = re.compile(
    r"^[ \t>]*(?:Received|Return-Path|DKIM-Signature):|original message follow",
    re.IGNORECASE | re.MULTILINE,
)
_OWN_FIELDS = ("From", "To", "Cc", "Reply-To", "Return-Path", "Sender", "Delivered-To")
FAILED_RECIPIENTS = "X-Failed-Recipients"


def read_generic(msg: Message) -> tuple[BouncedRecipient, ...]:
    """The recipients a mail system's notice `msg` says it could not deliver to."""
    subject = header_text(msg, "Subject")
    sender = header_text(msg, "From")
    null_sender = sender.strip("<> ") == ""
    if not (null_sender or _DAEMON_FROM.search(sender) or _BOUNCE_SUBJECT.search(subject)):
        return ()
    if subject.casefold().lstrip().startswith(SUBJECT_MARKERS):
        return ()
    notice = _notice(msg)
    if not (_FAILURE_WORDS.search(notice) or reason_in_text(notice) is not None):
        return ()
    emails = _listed(msg) or _named(msg, notice)
    if not emails or len(emails) > MAX_RECIPIENTS:
        return ()
    action = Action.DELAYED if _DELAY_SUBJECT.search(subject) else Action.FAILED
    return tuple(
        bounced_recipient(email, action, "", paragraph_about(email, notice)) for email in emails
    )


def _notice(msg: Message) -> str:
    """The notice's own text: its text parts outside any attached message, up to a
    returned message or a pasted header."""
    pieces: list[str] = []
    for part in _own_parts(msg):
        if part.get_content_maintype() == "text":
            pieces.append(part_text(part)[:NOTICE_CHARS])
    text = notice_text("\n".join(pieces)[:NOTICE_CHARS])
    pasted = _PASTED_HEADER.search(text)
    return text[: pasted.start()] if pasted else text


def _own_parts(msg: Message) -> Iterator[Message]:
    stack = [msg]
    while stack:
        part = stack.pop()
        if part is not msg and part.get_content_maintype() == "message":
            continue  # a returned message and its parts
        if part.get_content_type() == "text/rfc822-headers":
            continue
        yield part
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(reversed([sub for sub in payload if isinstance(sub, Message)]))


def _listed(msg: Message) -> list[str]:
    value = header_text(msg, FAILED_RECIPIENTS)
    return _distinct(_ADDRESS.findall(value)) if value else []


def _named(msg: Message, notice: str) -> list[str]:
    own = {
        address.casefold()
        for _, address in getaddresses([header_text(msg, name) for name in _OWN_FIELDS])
    }
    own.update(
        found.casefold()
        for line in _CORRESPONDENT_LINE.findall(notice)
        for found in _ADDRESS.findall(line)
    )
    return [
        email
        for email in _distinct(_ADDRESS.findall(notice))
        if email.casefold() not in own and not _SYSTEM_LOCAL.match(email.split("@")[0])
    ]


def _distinct(emails: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for email in emails:
        seen.setdefault(email.strip(".").casefold(), email.strip("."))
    return list(seen.values())
