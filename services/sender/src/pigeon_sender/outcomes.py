"""Pure rules of a chunk: an SMTP verdict to a claim record, a record to the events it
states, which copies are still owed, and how long a job waits before it comes back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pigeon_common import events as ev
from pigeon_common.domain.status import CampaignStatus
from pigeon_common.smtp_outcomes import Outcome, Verdict
from pigeon_common.validation import address_key
from pigeon_sender import records as rec
from pigeon_sender.records import ClaimRecord, ClaimStatus

RETRY_DELAYS_SEC = (2.0, 10.0, 60.0, 300.0, 900.0)
NOT_YET_STARTED = frozenset({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED})
NAMESPACE = uuid.UUID("5d8e0f3c-2a47-4f7e-9a61-7c1f0e4b9d21")


@dataclass(frozen=True, slots=True)
class Stated:
    """An event to store, under a deterministic `Nats-Msg-Id` and at its own time."""

    event: ev.Event
    aggregate: str
    msg_id: str
    occurred_at: datetime | None = None

    def envelope(self) -> ev.Envelope:
        return ev.envelope_for(
            self.event,
            self.aggregate,
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, self.msg_id),
            occurred_at=self.occurred_at,
        )


def outcome_msg_id(campaign_id: uuid.UUID, recipient_id: uuid.UUID) -> str:
    """One outcome event per recipient: a re-publish after a redelivery is a duplicate."""
    return f"outcome:{campaign_id}:{recipient_id}"


def after_smtp(
    held: ClaimRecord, email: str, outcome: Outcome, message_id: str, at: datetime
) -> ClaimRecord:
    """The record of a held claim once SMTP answered (`at`: when it did)."""
    if outcome.verdict is Verdict.SENT:
        return rec.sent(held, email, message_id, outcome.reply, at)
    if outcome.verdict is Verdict.FAILED:
        return rec.failed(held, email, outcome.code, outcome.reply, hard_bounce=outcome.hard_bounce)
    if outcome.verdict is Verdict.UNKNOWN:
        return rec.unknown(held, email, outcome.reply, message_id)
    return rec.released(held, outcome.reply)  # RETRY, AUTH: nothing went out


def events_for(
    campaign_id: uuid.UUID, mailbox_id: uuid.UUID, recipient_id: uuid.UUID, record: ClaimRecord
) -> list[Stated]:
    """The events a final record states; the same whoever states it, first or after a
    takeover (the message ids make JetStream keep one)."""
    msg_id = outcome_msg_id(campaign_id, recipient_id)
    aggregate = str(campaign_id)
    base = {"campaign_id": campaign_id, "recipient_id": recipient_id, "email": record.email}
    match record.status:
        case ClaimStatus.SENT:
            event: ev.Event = ev.MessageSent(
                **base, message_id=record.message_id, smtp_reply=record.reply, appended=False
            )
            return [Stated(event, aggregate, msg_id, record.at)]
        case ClaimStatus.FAILED:
            failed = ev.MessageFailed(
                **base,
                smtp_code=record.code,
                smtp_reply=record.reply,
                hard_bounce=record.hard_bounce,
            )
            stated = [Stated(failed, aggregate, msg_id)]
            if record.hard_bounce:
                suppress = ev.AddressSuppressed(
                    email=record.email,
                    mailbox_id=mailbox_id,
                    reason="hard_bounce",
                    detail=record.reply,
                )
                key = f"suppress:{mailbox_id}:{address_key(record.email)}"
                stated.append(Stated(suppress, record.email, key))
            return stated
        case ClaimStatus.SUPPRESSED:
            return [Stated(ev.MessageSuppressed(**base, reason=record.reason), aggregate, msg_id)]
        case ClaimStatus.UNKNOWN:
            return [Stated(ev.MessageUnknown(**base, reason=record.reason), aggregate, msg_id)]
    raise rec.ClaimTransitionError(record.status, "stated as an outcome")


def _batch_id(kind: str, campaign_id: uuid.UUID, recipient_ids: Iterable[uuid.UUID]) -> str:
    ids = ",".join(sorted(str(r) for r in recipient_ids))
    return f"{kind}:{campaign_id}:{uuid.uuid5(NAMESPACE, ids)}"


def filed(
    campaign_id: uuid.UUID, mailbox_id: uuid.UUID, folder: str, recipient_ids: list[uuid.UUID]
) -> Stated:
    event = ev.SentCopiesFiled(
        campaign_id=campaign_id, mailbox_id=mailbox_id, folder=folder, recipient_ids=recipient_ids
    )
    return Stated(event, str(campaign_id), _batch_id("filed", campaign_id, recipient_ids))


def pending(
    campaign_id: uuid.UUID, mailbox_id: uuid.UUID, recipient_ids: list[uuid.UUID], reason: str
) -> Stated:
    event = ev.SentCopiesPending(
        campaign_id=campaign_id, mailbox_id=mailbox_id, recipient_ids=recipient_ids, reason=reason
    )
    return Stated(event, str(campaign_id), _batch_id("pending", campaign_id, recipient_ids))


def owes_copy(record: ClaimRecord) -> bool:
    """A record whose message may have gone out and whose copy was wanted: it is owed
    until its bytes are gone from the copies bucket (deleted only after filing)."""
    return (
        record.copy
        and bool(record.message_id)
        and record.status
        in {
            ClaimStatus.SENT,
            ClaimStatus.UNKNOWN,
        }
    )


def retry_delay(deliveries: int) -> float:
    return RETRY_DELAYS_SEC[min(max(deliveries - 1, 0), len(RETRY_DELAYS_SEC) - 1)]


def job_overtook_projection(status: str, run_id: uuid.UUID | None, job_run_id: uuid.UUID) -> bool:
    """True when the read model has not yet seen the start (or resume) that enqueued the
    job: a not-yet-started campaign, or a paused one whose run is not the job's."""
    if status in NOT_YET_STARTED:
        return True
    return status == CampaignStatus.PAUSED and run_id != job_run_id
