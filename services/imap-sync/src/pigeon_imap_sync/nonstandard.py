"""Bounces without an RFC 3464 report, found by flufl.bounce's detectors.

flufl.bounce knows the formats of qmail, Exim, old Postfix and Sendmail, Exchange, Yahoo and
many more, and tells temporary failures (a DEFERRAL) from permanent ones (a BOUNCE). It does
not say why an address failed, so the paragraph of the bounce text that names the address
(its line up to the next blank line, at most `WINDOW_CHARS`) is read for that:

- a permanent failure is hard unless that paragraph says otherwise by the rule of
  `hardness` (a specific status not in the hard set, a cause that is not the address, a 4xx
  reply): flufl reports an address as permanently failing on "no such user"-like notices;
- a temporary failure is never hard;
- the status is the first enhanced status in the paragraph, the diagnostic the paragraph.

The detectors read every line of every part, attachments included, at about a second per
10 MB. A bounce notice is text and comes first, so they read a slimmed copy: at most the
first `SCAN_BYTES` of the message, no body of a part that is not text (a returned image or
executable is base64 noise to them), and at most `RETURNED_TEXT_CHARS` of a text part of
a returned message. A detector that raises on a strange message counts as finding nothing.
"""

from __future__ import annotations

import copy
import email
import re
from email.message import Message
from email.policy import compat32

from flufl.bounce import all_failures

from pigeon_imap_sync.hardness import bounced_recipient
from pigeon_imap_sync.inbound import Action, BouncedRecipient
from pigeon_imap_sync.mailtext import body_text, one_line
from pigeon_imap_sync.paragraph import notice_text, paragraph_about

SCAN_BYTES = 512 * 1024
RETURNED_TEXT_CHARS = 8 * 1024
# What comes before an address that is no failed recipient: an alias it was expanded
# from, or a Message-ID field quoted in the notice.
_ALIAS_BEFORE = re.compile(
    r"(?:expanded from:?\s*<?|(?:message-id|in-reply-to|references):[^\n]*<)$", re.IGNORECASE
)
# A recipient address: no quotes, brackets or braces (a JSON or header fragment), and a
# domain with a dot and a top-level label of letters (anonymised "b.c" included).
_PLAIN_ADDRESS = re.compile(r"[^\s\"'<>()\[\]{}@,;:\\]+@(?:[\w-]+\.)+[^\W\d_]+\.?")
# Bounce notices come first; the rest is the returned message.
BODY_CHARS = 256 * 1024


def read_bounce(msg: Message, raw: bytes) -> tuple[BouncedRecipient, ...]:
    """The recipients flufl.bounce finds failing in `msg` (parsed from `raw`), permanent
    ones first."""
    if len(raw) > SCAN_BYTES:
        msg = email.message_from_bytes(raw[:SCAN_BYTES], policy=compat32)
    try:
        temporary, permanent = all_failures(_slimmed(msg))
    except Exception:  # a heuristic that trips over a strange message: nothing found
        return ()
    if not temporary and not permanent:
        return ()
    body = notice_text(body_text(msg, BODY_CHARS))
    failed = [_recipient(address, Action.FAILED, body) for address in sorted(permanent)]
    delayed = [
        _recipient(address, Action.DELAYED, body) for address in sorted(temporary - permanent)
    ]
    return tuple(
        entry
        for entry in failed + delayed
        if _PLAIN_ADDRESS.fullmatch(entry.email) and not _only_alias(entry.email, body)
    )


def _slimmed(msg: Message) -> Message:
    """A copy of `msg` with what the detectors need: the text of the notice."""
    slim = copy.deepcopy(msg)  # strings are shared, not copied: cheap
    _slim_parts(slim, returned=False)
    return slim


def _slim_parts(part: Message, *, returned: bool) -> None:
    if part.is_multipart():
        inside = returned or part.get_content_type() == "message/rfc822"
        for child in part.get_payload():
            if isinstance(child, Message):
                _slim_parts(child, returned=inside)
        return
    payload = part.get_payload()
    if not isinstance(payload, str):
        return
    if part.get_content_maintype() != "text":
        part.set_payload("")
    elif returned and len(payload) > RETURNED_TEXT_CHARS:
        part.set_payload(payload[:RETURNED_TEXT_CHARS])


def _only_alias(email: str, body: str) -> bool:
    """Whether every mention of `email` is as an alias a failed address was expanded
    from ("(expanded from: <list@example.org>)") or in a quoted Message-ID field: that
    address did not fail itself."""
    mentions = [m.start() for m in re.finditer(re.escape(email), body, re.IGNORECASE)]
    return bool(mentions) and all(
        _ALIAS_BEFORE.search(body, max(0, at - 200), at) for at in mentions
    )


def _recipient(address: bytes, action: Action, body: str) -> BouncedRecipient:
    email = one_line(address.decode("ascii", errors="replace"))
    paragraph = paragraph_about(email, body) if email else ""
    # The paragraph is the remote server's words as the bouncing MTA quotes them.
    return bounced_recipient(email, action, "", paragraph)
