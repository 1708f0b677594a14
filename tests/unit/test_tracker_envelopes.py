"""The tracker's hand-written event JSON is byte for byte what pydantic writes, and the
projector's decoder reads it as the typed event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from pigeon_common import events as ev
from pigeon_common.jetstream import encode, subject_for
from pigeon_tracker.envelopes import (
    CLICKED_SUBJECT,
    OPENED_SUBJECT,
    clicked_json,
    json_string,
    new_event_id,
    opened_json,
    utc_now,
)

CAMPAIGN = uuid.UUID("0b0b0b0b-0000-4000-8000-000000000001")
RECIPIENT = uuid.UUID("0b0b0b0b-0000-4000-8000-000000000002")
AGENTS = ["", "Mozilla/5.0", 'quote " backslash \\ slash / Zoë 🐦 \u2028 \x7f', "a" * 300]
TIMES = [
    datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=UTC),
    datetime(2024, 5, 17, 9, 30, 15, 0, tzinfo=UTC),
    datetime(2024, 5, 17, 9, 30, 15, 5, tzinfo=UTC),
]


@pytest.mark.parametrize("agent", AGENTS)
@pytest.mark.parametrize("at", TIMES)
@pytest.mark.parametrize("reason", ["", "proxy", "apple_mpp", "head"])
def test_opened_matches_pydantic(agent: str, at: datetime, reason: ev.MachineReason) -> None:
    event_id = uuid.UUID(new_event_id())
    event = ev.MessageOpened(
        campaign_id=CAMPAIGN,
        recipient_id=RECIPIENT,
        machine=bool(reason),
        machine_reason=reason,
        user_agent=agent,
    )
    envelope = ev.envelope_for(event, str(CAMPAIGN), event_id=event_id, occurred_at=at)
    fast = opened_json(str(event_id), at, CAMPAIGN, RECIPIENT, reason, json_string(agent))
    assert fast == encode(envelope)
    assert subject_for(envelope) == OPENED_SUBJECT
    fact, decoded = ev.decode_event(fast)
    assert decoded == event
    assert (fact.event_id, fact.occurred_at, fact.aggregate_id) == (event_id, at, str(CAMPAIGN))


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/news?id=1&b=2",
        'https://example.com/"q"/\\',
        "https://xn--zo-0ja.example/é",
    ],
)
@pytest.mark.parametrize("agent", AGENTS)
def test_clicked_matches_pydantic(url: str, agent: str) -> None:
    event_id, at = uuid.UUID(new_event_id()), utc_now()
    event = ev.LinkClicked(
        campaign_id=CAMPAIGN,
        recipient_id=RECIPIENT,
        link_index=7,
        url=url,
        machine=True,
        machine_reason="scanner",
        user_agent=agent,
    )
    envelope = ev.envelope_for(event, str(CAMPAIGN), event_id=event_id, occurred_at=at)
    fast = clicked_json(
        str(event_id), at, CAMPAIGN, RECIPIENT, 7, json_string(url), "scanner", json_string(agent)
    )
    assert fast == encode(envelope)
    assert subject_for(envelope) == CLICKED_SUBJECT
    assert ev.decode_event(fast)[1] == event


def test_event_ids_are_random_version_4() -> None:
    spelled = [new_event_id() for _ in range(1000)]
    ids = {uuid.UUID(i) for i in spelled}
    assert len(ids) == 1000
    assert {i.version for i in ids} == {4}
    assert {i.variant for i in ids} == {uuid.RFC_4122}
    assert spelled == [str(i) for i in map(uuid.UUID, spelled)]
