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
10 MB; a bounce notice comes first, so they see at most the first `SCAN_BYTES` of the
message. A detector that raises on a strange message counts as finding nothing.
"""

from __future__ import annotations

import email
import re
from email.message import Message
from email.policy import compat32

from flufl.bounce import all_failures

from pigeon_imap_sync.dsn import MAX_DIAGNOSTIC_CHARS
from pigeon_imap_sync.hardness import is_hard, status_in_text, verdict
from pigeon_imap_sync.inbound import Action, BouncedRecipient
from pigeon_imap_sync.mailtext import BLANK_LINE, body_text, one_line

SCAN_BYTES = 512 * 1024
WINDOW_CHARS = 600
# Bounce notices come first; the rest is the returned message.
BODY_CHARS = 256 * 1024
# An address named more often than this is in a list or a loop, not a notice.
_MAX_OCCURRENCES = 20


def read_bounce(msg: Message, raw: bytes) -> tuple[BouncedRecipient, ...]:
    """The recipients flufl.bounce finds failing in `msg` (parsed from `raw`), permanent
    ones first."""
    if len(raw) > SCAN_BYTES:
        msg = email.message_from_bytes(raw[:SCAN_BYTES], policy=compat32)
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a heuristic that trips over a strange message: nothing found
        return ()
    if not temporary and not permanent:
        return ()
    body = body_text(msg, BODY_CHARS)
    failed = [_recipient(address, Action.FAILED, body) for address in sorted(permanent)]
    delayed = [
        _recipient(address, Action.DELAYED, body) for address in sorted(temporary - permanent)
    ]
    return tuple(entry for entry in failed + delayed if entry.email)


def _recipient(address: bytes, action: Action, body: str) -> BouncedRecipient:
    email = one_line(address.decode("ascii", errors="replace"))
    paragraph = _paragraph_about(email, body) if email else ""
    status = status_in_text(paragraph)
    hard = action is Action.FAILED and is_hard(status, paragraph, default=True)
    return BouncedRecipient(
        email=email,
        action=action,
        status=status,
        diagnostic=one_line(paragraph, MAX_DIAGNOSTIC_CHARS),
        hard=hard,
    )


def _paragraph_about(email: str, body: str) -> str:
    """The first paragraph naming `email` that says why it failed, else the first one."""
    first = ""
    pattern = re.compile(re.escape(email), re.IGNORECASE)
    for count, match in enumerate(pattern.finditer(body)):
        if count == _MAX_OCCURRENCES:
            break
        line_start = body.rfind("\n", 0, match.start()) + 1
        start = max(line_start, match.start() - WINDOW_CHARS)
        blank = BLANK_LINE.search(body, match.end())
        end = min(blank.start() if blank else len(body), match.end() + WINDOW_CHARS)
        paragraph = body[start:end]
        if verdict(status_in_text(paragraph), paragraph) is not None:
            return paragraph
        first = first or paragraph
    return first
