"""The sender's claim / outcome / copy state machine, without servers: every transition,
the events each final record states, and what a takeover makes of what it finds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from pigeon_common import events as ev
from pigeon_common.smtp_outcomes import Outcome, Verdict
from pigeon_sender import outcomes
from pigeon_sender import records as rec
from pigeon_sender.chunks import with_chunk
from pigeon_sender.records import ClaimRecord, ClaimStatus, ClaimTransitionError

CAMPAIGN = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
MAILBOX = uuid.UUID("00000000-0000-4000-8000-0000000000b1")
RECIPIENT = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
AT = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
EMAIL = "ann@example.org"
MID = "c1.a1.xyz@example.com"


def held(copy: bool = True) -> ClaimRecord:
    return rec.claimed(MID if copy else "", copy=copy)


def test_a_record_survives_its_json_form() -> None:
    record = rec.sent(held(), EMAIL, MID, "250 ok", AT)
    assert ClaimRecord.from_json(record.to_json()) == record
    assert ClaimRecord.from_json(rec.CLAIMED_VALUE) == held(copy=False)


def test_records_written_before_the_typed_form_still_decode() -> None:
    old = b'{"status": "sent", "email": "a@x", "message_id": "m@x", "reply": "250 ok"}'
    record = ClaimRecord.from_json(old)
    assert (record.status, record.message_id, record.copy, record.at) == (
        ClaimStatus.SENT,
        "m@x",
        False,
        None,
    )
    assert (
        ClaimRecord.from_json(b'{"status": "retry", "reason": "451"}').status is ClaimStatus.RETRY
    )


@pytest.mark.parametrize(
    ("verdict", "status"),
    [
        (Verdict.SENT, ClaimStatus.SENT),
        (Verdict.FAILED, ClaimStatus.FAILED),
        (Verdict.UNKNOWN, ClaimStatus.UNKNOWN),
        (Verdict.RETRY, ClaimStatus.RETRY),
        (Verdict.AUTH, ClaimStatus.RETRY),
    ],
)
def test_a_held_claim_after_smtp(verdict: Verdict, status: ClaimStatus) -> None:
    outcome = Outcome(verdict, 250 if verdict is Verdict.SENT else 550, "reply", False)
    record = outcomes.after_smtp(held(), EMAIL, outcome, MID, AT)
    assert record.status is status


def test_sent_keeps_the_acceptance_time_and_the_copy_owed() -> None:
    record = outcomes.after_smtp(held(), EMAIL, Outcome(Verdict.SENT, 250, "250 ok"), MID, AT)
    assert (record.at, record.message_id, record.copy) == (AT, MID, True)
    assert outcomes.owes_copy(record)
    [stated] = outcomes.events_for(CAMPAIGN, MAILBOX, RECIPIENT, record)
    assert stated.occurred_at == AT and stated.envelope().occurred_at == AT
    assert isinstance(stated.event, ev.MessageSent) and stated.event.appended is False
    assert stated.msg_id == f"outcome:{CAMPAIGN}:{RECIPIENT}"


def test_nothing_went_out_so_no_copy_is_owed() -> None:
    failed = rec.failed(held(), EMAIL, 550, "5.1.1 no such user", hard_bounce=True)
    suppressed = rec.suppressed(held(), EMAIL, "address is suppressed")
    released = rec.released(held(), "451 later")
    assert not any(outcomes.owes_copy(r) for r in (failed, suppressed, released))
    assert released.status is ClaimStatus.RETRY and rec.may_claim(released)


def test_a_hard_bounce_states_the_failure_and_the_suppression() -> None:
    failed = rec.failed(held(), EMAIL, 550, "5.1.1 no such user", hard_bounce=True)
    first, second = outcomes.events_for(CAMPAIGN, MAILBOX, RECIPIENT, failed)
    assert isinstance(first.event, ev.MessageFailed) and first.event.smtp_code == 550
    assert isinstance(second.event, ev.AddressSuppressed)
    assert second.msg_id == f"suppress:{MAILBOX}:{EMAIL}"
    soft = rec.failed(held(), EMAIL, 554, "spam", hard_bounce=False)
    assert len(outcomes.events_for(CAMPAIGN, MAILBOX, RECIPIENT, soft)) == 1


def test_a_claim_a_dead_sender_held_becomes_unknown_and_keeps_its_copy() -> None:
    record = rec.taken_over(held(), EMAIL)
    assert record.status is ClaimStatus.UNKNOWN and record.reason == rec.DIED_MID_SEND
    assert outcomes.owes_copy(record), "it may have gone out: its copy is filed too"
    assert not outcomes.owes_copy(rec.taken_over(held(copy=False), EMAIL))
    [stated] = outcomes.events_for(CAMPAIGN, MAILBOX, RECIPIENT, record)
    assert isinstance(stated.event, ev.MessageUnknown)


@pytest.mark.parametrize(
    "final",
    [
        rec.sent(held(), EMAIL, MID, "250 ok", AT),
        rec.failed(held(), EMAIL, 550, "no", hard_bounce=False),
        rec.suppressed(held(), EMAIL, "why"),
        rec.unknown(held(), EMAIL, "lost after DATA", MID),
    ],
)
def test_a_final_record_is_final(final: ClaimRecord) -> None:
    assert rec.taken_over(final, EMAIL) is final
    assert not rec.may_claim(final)
    for step in (
        lambda r: rec.sent(r, EMAIL, MID, "250", AT),
        lambda r: rec.failed(r, EMAIL, 550, "", hard_bounce=False),
        lambda r: rec.unknown(r, EMAIL, ""),
        lambda r: rec.suppressed(r, EMAIL, ""),
        lambda r: rec.released(r, ""),
    ):
        with pytest.raises(ClaimTransitionError):
            step(final)


def test_a_released_claim_is_not_an_outcome_and_cannot_be_taken_over() -> None:
    released = rec.released(held(), "451")
    with pytest.raises(ClaimTransitionError):
        rec.taken_over(released, EMAIL)
    with pytest.raises(ClaimTransitionError):
        outcomes.events_for(CAMPAIGN, MAILBOX, RECIPIENT, released)
    with pytest.raises(ClaimTransitionError):
        rec.sent(released, EMAIL, MID, "250", AT)


def test_filing_events_are_the_same_for_the_same_batch_in_any_order() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    first = outcomes.filed(CAMPAIGN, MAILBOX, "Sent", [a, b])
    again = outcomes.filed(CAMPAIGN, MAILBOX, "Sent", [b, a])
    assert first.msg_id == again.msg_id and first.envelope().event_id == again.envelope().event_id
    assert first.msg_id != outcomes.filed(CAMPAIGN, MAILBOX, "Sent", [a]).msg_id
    pending = outcomes.pending(CAMPAIGN, MAILBOX, [a, b], "refused")
    assert pending.msg_id.startswith("pending:") and isinstance(pending.event, ev.SentCopiesPending)


def test_a_chunk_is_counted_once() -> None:
    value, count = with_chunk(None, 3)
    assert count == 1 and value == b"B\x08"
    again, count = with_chunk(value, 3)
    assert again is None and count == 1
    _, count = with_chunk(value, 0)
    assert count == 2


def test_ten_thousand_chunks_fit_in_a_small_value() -> None:
    value: bytes | None = None
    for index in reversed(range(10_000)):
        value, count = with_chunk(value, index)
    assert value is not None and count == 10_000 and len(value) == 1 + 1_250
    assert with_chunk(value, 9_999) == (None, 10_000)


def test_a_run_counted_as_a_json_list_goes_on() -> None:
    value, count = with_chunk(b"[0, 2, 5]", 1)
    assert count == 4
    assert with_chunk(value, 5) == (None, 4)


def test_a_job_may_overtake_the_projection_of_its_start() -> None:
    run = uuid.uuid4()
    assert outcomes.job_overtook_projection("draft", None, run)
    assert outcomes.job_overtook_projection("paused", uuid.uuid4(), run)
    assert not outcomes.job_overtook_projection("paused", run, run)
    assert not outcomes.job_overtook_projection("sending", run, run)
