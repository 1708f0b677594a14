"""Bounding what public URLs add to the event store: the pure rules."""

from __future__ import annotations

import uuid

from pigeon_common.jetstream import EVENTS_STREAM, STREAMS
from pigeon_tracker.coalesce import ACTION_WINDOW_SEC, FloodGate, action_id, chained_id

MINUTE = 1_800_000_000.0  # a wall-clock time at the start of a minute


def test_the_gate_records_limit_fetches_per_token_and_minute() -> None:
    gate = FloodGate(limit=3)
    assert [gate.admit("a", MINUTE + i) for i in range(5)] == [True, True, True, False, False]
    assert gate.admit("b", MINUTE + 10)  # another token counts on its own
    assert gate.admit("a", MINUTE + 60)  # the next minute starts again
    assert gate.admit("b", MINUTE + 61)


def test_a_fetch_not_stored_gives_its_count_back() -> None:
    gate = FloodGate(limit=1)
    assert gate.admit("a", MINUTE)
    gate.release("a")
    assert gate.admit("a", MINUTE + 1)
    assert not gate.admit("a", MINUTE + 2)
    gate.release("unknown")  # nothing to give back: no error


def test_limit_zero_records_everything() -> None:
    gate = FloodGate(limit=0)
    assert all(gate.admit("a", MINUTE) for _ in range(1000))


def test_the_gate_memory_is_bounded() -> None:
    gate = FloodGate(limit=1, max_tokens=2)
    assert gate.admit("a", MINUTE) and gate.admit("b", MINUTE)
    assert gate.admit("c", MINUTE) and gate.admit("c", MINUTE)  # recorded, not counted
    assert len(gate._counts) == 2
    assert not gate.admit("a", MINUTE)


def test_action_ids_are_per_recipient_action_and_window() -> None:
    campaign, recipient, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = MINUTE + 5
    same = action_id("unsubscribe", campaign, recipient, at + ACTION_WINDOW_SEC - 6)
    assert action_id("unsubscribe", campaign, recipient, at) == same
    assert action_id("unsubscribe", campaign, recipient, at + ACTION_WINDOW_SEC) != same
    assert action_id("resubscribe", campaign, recipient, at) != same
    assert action_id("unsubscribe", campaign, other, at) != same
    assert len(same) < 128


def test_chained_ids_are_deterministic_and_new() -> None:
    first = action_id("unsubscribe", uuid.uuid4(), uuid.uuid4(), MINUTE)
    assert chained_id(first, 42) == chained_id(first, 42)
    assert chained_id(first, 42) not in (first, chained_id(first, 43))


def test_the_action_window_fits_in_the_events_duplicate_window() -> None:
    (events,) = [spec for spec in STREAMS if spec.name == EVENTS_STREAM]
    assert events.duplicate_window_sec > ACTION_WINDOW_SEC
