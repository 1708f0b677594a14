"""The claim record: what the claims bucket holds for one (campaign, recipient).

Pure: a typed record, its JSON form (records written before this module, plain dicts
with the same status words, still decode), and the transitions a record may take. The
I/O around it is in `claims.py`; the events a record states are in `outcomes.py`.

    (none) ──claim──► CLAIMED ──SMTP answered──► SENT | FAILED | UNKNOWN
      │                  │  └──temporary failure / stopped──► RETRY ──claim──► CLAIMED
      │                  └──found by a takeover──► UNKNOWN (never resent)
      └──claim, address suppressed──► SUPPRESSED;  claim, cannot render──► FAILED

`copy` says a copy of the message is owed to the Sent folder; its bytes wait in the
copies bucket (`copies.py`) under `copy_key(...)` until a `sent_copies.filed` event
states it is filed. It is set on CLAIMED already (before SMTP), so a takeover can still
file a message whose sender died between the server's acceptance and recording it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class ClaimStatus(StrEnum):
    CLAIMED = "claimed"  # a sender holds it; SMTP may be under way
    RETRY = "retry"  # released after a temporary failure: a later attempt may claim it
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    UNKNOWN = "unknown"  # whether it went out cannot be known: never resent


FINAL = frozenset(
    {ClaimStatus.SENT, ClaimStatus.FAILED, ClaimStatus.SUPPRESSED, ClaimStatus.UNKNOWN}
)
DIED_MID_SEND = "sender stopped before recording the outcome"


class ClaimTransitionError(Exception):
    """Raised when a record would take a step the state machine does not allow (a final
    outcome overwritten, a claim taken over that is not held)."""

    def __init__(self, status: ClaimStatus, step: str) -> None:
        super().__init__(f"a {status} claim cannot be {step}")
        self.status = status
        self.step = step


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    status: ClaimStatus
    email: str = ""
    message_id: str = ""
    reply: str = ""
    code: int = 0
    hard_bounce: bool = False
    reason: str = ""
    at: datetime | None = None  # when the SMTP server accepted the message
    copy: bool = False  # a copy is owed to the Sent folder (bytes in the copies bucket)

    def to_json(self) -> bytes:
        data: dict[str, Any] = {"status": self.status.value}
        for name in ("email", "message_id", "reply", "code", "hard_bounce", "reason", "copy"):
            value = getattr(self, name)
            if value:
                data[name] = value
        if self.at is not None:
            data["at"] = self.at.isoformat()
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | None) -> ClaimRecord:
        data = json.loads(raw or b"{}")
        at = data.get("at")
        return cls(
            status=ClaimStatus(data.get("status", ClaimStatus.CLAIMED)),
            email=str(data.get("email", "")),
            message_id=str(data.get("message_id", "")),
            reply=str(data.get("reply", "")),
            code=int(data.get("code", 0)),
            hard_bounce=bool(data.get("hard_bounce", False)),
            reason=str(data.get("reason", "")),
            at=datetime.fromisoformat(at) if at else None,
            copy=bool(data.get("copy", False)),
        )


# --- transitions -------------------------------------------------------------------------


def claimed(message_id: str = "", *, copy: bool = False) -> ClaimRecord:
    """The record a sender creates before SMTP."""
    return ClaimRecord(ClaimStatus.CLAIMED, message_id=message_id, copy=copy)


CLAIMED_VALUE = claimed().to_json()  # the constant claim of a message that owes no copy


def may_claim(record: ClaimRecord) -> bool:
    """Only a released claim may be taken again; anything else stays as it is."""
    return record.status is ClaimStatus.RETRY


def released(current: ClaimRecord, reason: str) -> ClaimRecord:
    """A held claim given back (temporary failure, campaign stopped, rate limit)."""
    _require(current, ClaimStatus.CLAIMED, "released")
    return ClaimRecord(ClaimStatus.RETRY, reason=reason)


def sent(
    current: ClaimRecord, email: str, message_id: str, reply: str, at: datetime
) -> ClaimRecord:
    _require(current, ClaimStatus.CLAIMED, "recorded as sent")
    return replace(
        current, status=ClaimStatus.SENT, email=email, message_id=message_id, reply=reply, at=at
    )


def failed(
    current: ClaimRecord, email: str, code: int, reply: str, *, hard_bounce: bool
) -> ClaimRecord:
    """SMTP refused it for good, or it could not be rendered (code 0): nothing went out,
    so no copy is owed."""
    _require(current, ClaimStatus.CLAIMED, "recorded as failed")
    return ClaimRecord(
        ClaimStatus.FAILED, email=email, code=code, reply=reply, hard_bounce=hard_bounce
    )


def unknown(current: ClaimRecord, email: str, reason: str, message_id: str = "") -> ClaimRecord:
    """The connection was lost after DATA, or the sender holding it died: it may have
    gone out, so a copy still owed stays owed."""
    _require(current, ClaimStatus.CLAIMED, "recorded as unknown")
    return replace(
        current,
        status=ClaimStatus.UNKNOWN,
        email=email,
        reason=reason,
        message_id=message_id or current.message_id,
    )


def suppressed(current: ClaimRecord, email: str, reason: str) -> ClaimRecord:
    _require(current, ClaimStatus.CLAIMED, "recorded as suppressed")
    return ClaimRecord(ClaimStatus.SUPPRESSED, email=email, reason=reason)


def taken_over(found: ClaimRecord, email: str) -> ClaimRecord:
    """What a sender that finds `found` (claim lost) makes of it: a claim still held
    belonged to a sender that died mid-send and becomes unknown; a final record stays."""
    if found.status is ClaimStatus.CLAIMED:
        return unknown(found, email, DIED_MID_SEND)
    if found.status in FINAL:
        return found
    raise ClaimTransitionError(found.status, "taken over")


def _require(current: ClaimRecord, status: ClaimStatus, step: str) -> None:
    if current.status is not status:
        raise ClaimTransitionError(current.status, step)


# --- keys -------------------------------------------------------------------------------


def claim_key(campaign_id: uuid.UUID, recipient_id: uuid.UUID) -> str:
    return f"{campaign_id}.{recipient_id}"


def copy_key(campaign_id: uuid.UUID, recipient_id: uuid.UUID, message_id: str) -> str:
    """Where a message's bytes wait for filing: per message, not per recipient, so two
    senders racing one recipient never overwrite each other's bytes (a Message-ID has
    characters a KV key may not, hence the digest)."""
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    return f"{campaign_id}.{recipient_id}.{digest}"
