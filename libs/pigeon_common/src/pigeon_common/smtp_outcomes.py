"""What an SMTP answer means for one recipient: pure classification, no I/O.

The rule (DESIGN §2.1 and §2.3): a temporary failure before the message data was handed
over (4xx, disconnect, timeout at MAIL/RCPT, or a 4xx answer to DATA) may be retried; a
connection lost after the data was sent leaves the outcome unknown (never resent); a 5xx
is a recorded failure, and a hard bounce (the address itself is bad) also suppresses the
address; an authentication failure pauses the campaign.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    CONNECT = "connect"
    MAIL = "mail"  # MAIL FROM refused: about the sender, never the recipient's address
    ENVELOPE = "envelope"  # MAIL FROM / RCPT TO: nothing handed over yet
    DATA = "data"  # the message was (being) sent


class Verdict(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    UNKNOWN = "unknown"
    AUTH = "auth"


ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Enhanced codes that mean the address is bad: bad mailbox / domain / syntax, moved,
# mailbox disabled (RFC 3463).
HARD_BOUNCE_STATUSES = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"})
UNKNOWN_USER_TEXT = re.compile(
    r"user unknown|unknown user|no such user|does not exist|unknown recipient|"
    r"recipient address rejected: user",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    code: int
    reply: str
    hard_bounce: bool = False


def enhanced_status(reply: str) -> str | None:
    match = ENHANCED_STATUS.search(reply)
    return ".".join(match.groups()) if match else None


def is_hard_bounce(code: int, reply: str) -> bool:
    """True when a permanent reply says the address itself cannot receive mail."""
    if code < 500:
        return False
    status = enhanced_status(reply)
    if status is not None:
        return status in HARD_BOUNCE_STATUSES
    return code in (550, 551, 553) and bool(UNKNOWN_USER_TEXT.search(reply))


def classify_reply(phase: Phase, code: int, reply: str) -> Outcome:
    """An SMTP error reply at `phase`."""
    if code in (530, 534, 535, 538) and phase is Phase.CONNECT:
        return Outcome(Verdict.AUTH, code, reply)
    if 400 <= code < 500:
        return Outcome(Verdict.RETRY, code, reply)
    if code >= 500:
        hard = phase is not Phase.MAIL and is_hard_bounce(code, reply)
        return Outcome(Verdict.FAILED, code, reply, hard_bounce=hard)
    return Outcome(Verdict.RETRY, code, reply)


def classify_lost_connection(phase: Phase, reason: str) -> Outcome:
    """The connection dropped or timed out at `phase` without an answer."""
    if phase is Phase.DATA:
        return Outcome(Verdict.UNKNOWN, 0, f"connection lost during DATA: {reason}")
    return Outcome(Verdict.RETRY, 0, f"connection lost: {reason}")
