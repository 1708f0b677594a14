"""What one message found in a mailbox's bounce folder is, as `classify` reports it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from pigeon_imap_sync.reasons import Reason


class InboundKind(StrEnum):
    BOUNCE = "bounce"  # at least one recipient failed for good
    DEFERRAL = "deferral"  # delivery is delayed and still being tried
    REPLY = "reply"  # a person answered one of our messages
    AUTO_REPLY = "auto_reply"  # an out-of-office or other automatic answer
    OTHER = "other"  # none of the above (a success report, a stray message)
    UNPARSED = "unparsed"  # too large, or the classifier failed on it: see `reason`


class Action(StrEnum):
    """RFC 3464 Action values; `classify` reports the two that matter for a recipient."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"


@dataclass(frozen=True)
class BouncedRecipient:
    """One recipient a bounce or a deferral reports on."""

    email: str  # as the report names it; compare with `validation.address_key`
    action: Action  # FAILED or DELAYED
    status: str  # the most trusted enhanced status ("5.1.1"), '' if none was given
    diagnostic: str  # the remote server's words, one line, at most 500 characters
    hard: bool  # the address itself is bad (DESIGN invariant 4): suppress it at once
    reason: Reason = Reason.UNKNOWN  # why it failed (`reasons`)
    evidence: str = ""  # what the reason was read from ("diagnostic text: over quota")


@dataclass(frozen=True)
class Inbound:
    """The classification of one message; every string is a single line."""

    kind: InboundKind
    # Failed and delayed recipients of a BOUNCE or DEFERRAL: in report order for an RFC 3464
    # report, failed then delayed, each by address, for other bounces.
    recipients: tuple[BouncedRecipient, ...] = ()
    # (campaign_id, recipient_id) of our messages this one refers to, most reliable first.
    references: tuple[tuple[uuid.UUID, uuid.UUID], ...] = ()
    sender: str = ""  # From address of a REPLY or AUTO_REPLY
    subject: str = ""
    message_id: str = ""  # this message's own Message-ID, without angle brackets
    reason: str = ""  # why, for OTHER and UNPARSED
