"""A projector batch is bounded by its writes as well as by its events."""

from __future__ import annotations

from pigeon_projector.projection import Write
from pigeon_projector.projector import DecodedEvent, split_by_writes, weight


def _event(seq: int, writes: int) -> DecodedEvent:
    return DecodedEvent(seq, [Write("UPDATE t SET x = $1", (i,)) for i in range(writes)], [])


def test_batches_keep_order_and_stay_under_the_bound() -> None:
    events = [_event(1, 3), _event(2, 3), _event(3, 0), _event(4, 5), _event(5, 9)]
    batches = split_by_writes(events, max_writes=7)
    assert [[e.seq for e in b] for b in batches] == [[1, 2, 3], [4], [5]]
    # An event heavier than the bound goes alone; a skipped event (no write) weighs one.
    assert weight(events[2]) == 1


def test_nothing_gives_no_batch() -> None:
    assert split_by_writes([], max_writes=5) == []
