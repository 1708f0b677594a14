"""Hard or soft: does a failure report say the address itself is bad?

A hard bounce suppresses the address for good (DESIGN invariant 3), so it needs evidence:

1. A specific enhanced status decides alone: hard exactly when it is in
   `HARD_BOUNCE_STATUSES` (5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10, 5.2.1). Everything else is
   soft: a policy or spam block (5.7.x), a message too large (5.3.4), content (5.6.x), a
   full mailbox (5.2.2, 4.2.2), any 4.x.x.
2. Without one (no status, or a vague X.Y.0 "other"), the words decide: a cause that is not
   the address (quota, full, spam, policy, blocked, too large, timeout, ...) is soft; "user
   unknown" and its kin (`UNKNOWN_USER_TEXT`) are hard.
3. Still undecided: a 4.Y.0 status, a vague status about something other than the address
   (5.2.0 to 5.7.0) or a 4xx reply code is soft.
4. When nothing says anything, the caller's default applies: soft for an RFC 3464 report
   (it states its status, and a vague one is no proof), hard for a non-standard bounce that
   flufl.bounce reported as a permanent failure (its detectors look for exactly the "no such
   recipient" notices).
"""

from __future__ import annotations

import re

from pigeon_common.smtp_outcomes import HARD_BOUNCE_STATUSES, UNKNOWN_USER_TEXT

# An enhanced status in free text. Stricter than `smtp_outcomes.ENHANCED_STATUS`: a bounce
# body is full of IP addresses, and "192.5.1.10" must not read as status 5.1.10.
_STATUS_IN_TEXT = re.compile(r"(?<![\w.])([45])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
# A reply code: three digits starting with 4 or 5, not part of a number, date or address.
_REPLY_CODE = re.compile(r"(?<![\w.:/-])([45]\d\d)(?=[\s-]|$)")
# Causes that are not the address: the message, the sender, the mailbox's size, the route.
_NOT_THE_ADDRESS = re.compile(
    r"\b(?:quota|mailbox (?:is )?full|full mailbox|mailfolder is full|insufficient|exceed|"
    r"too (?:large|big)|size limit|message size|spam|junk|blocked|block ?list|black ?list|"
    r"deny ?list|policy|reputation|rate limit|too many|content (?:rejected|filter|policy)|"
    r"virus|malware|temporar|try again|time ?out|timed out|retry|deferred|greylist|"
    r"unauthenticated|dmarc|spf|dkim)",
    re.IGNORECASE,
)
# Vague statuses ("other or undefined ... status") of these subjects may be the address.
_ADDRESS_SUBJECTS = frozenset({"0", "1"})


def status_in_text(text: str) -> str:
    """The first 4.x.x or 5.x.x enhanced status in `text` ('' when there is none)."""
    match = _STATUS_IN_TEXT.search(text)
    return ".".join(match.groups()) if match else ""


def is_specific(status: str) -> bool:
    """A status that names a cause: not empty and not a vague X.Y.0."""
    return bool(status) and not status.endswith(".0")


def verdict(status: str, text: str) -> bool | None:
    """Steps 1 to 3 for a recipient's status and failure text: True hard, False soft,
    None when neither says anything."""
    if is_specific(status):
        return status in HARD_BOUNCE_STATUSES
    if _NOT_THE_ADDRESS.search(text):
        return False
    if UNKNOWN_USER_TEXT.search(text):
        return True
    if status:
        _, subject, _ = status.split(".")
        return None if status.startswith("5") and subject in _ADDRESS_SUBJECTS else False
    code = _REPLY_CODE.search(text)
    return False if code is not None and code.group(1).startswith("4") else None


def is_hard(status: str, text: str, *, default: bool) -> bool:
    """The whole rule: `verdict`, else the caller's `default` (step 4)."""
    found = verdict(status, text)
    return default if found is None else found
