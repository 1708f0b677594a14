"""Counts tallied on a hot path reach their prometheus-client counter at a flush, and a
scrape flushes first: nothing counted is lost, nothing counted twice."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter

from pigeon_common import metrics


def _value(registry: CollectorRegistry, **labels: str) -> float:
    return registry.get_sample_value("test_tally_things_total", labels) or 0.0


def test_a_tally_adds_its_counts_at_flush_once() -> None:
    registry = CollectorRegistry()
    counter = Counter("test_tally_things", "Things.", ["kind"], registry=registry)
    tally = metrics.Tally(counter)
    for _ in range(3):
        tally.add(("a",))
    tally.add(("b",))
    assert _value(registry, kind="a") == 0  # not yet flushed
    tally.flush()
    assert (_value(registry, kind="a"), _value(registry, kind="b")) == (3, 1)
    tally.flush()  # nothing pending: nothing added again
    assert _value(registry, kind="a") == 3
    tally.add(("a",))
    metrics.flush_all()  # every tally, as exposition() does before rendering
    assert _value(registry, kind="a") == 4


def test_the_exposition_flushes_the_event_counts_first() -> None:
    before = metrics.exposition().decode()
    metrics.EVENTS.stored("tally.test")
    metrics.EVENTS.count("tally.test", stored=False)
    after = metrics.exposition().decode()
    assert 'pigeon_events_stored_total{type="tally.test"} 1.0' in after
    assert 'pigeon_events_failed_total{type="tally.test"} 1.0' in after
    assert "tally.test" not in before


async def test_the_periodic_flush_runs_until_stopped_and_once_more() -> None:
    registry = CollectorRegistry()
    tally = metrics.Tally(Counter("test_tally_things", "Things.", ["kind"], registry=registry))
    stop = asyncio.Event()
    flusher = asyncio.create_task(metrics.flush_periodically(stop, every_sec=0.05))
    tally.add(("a",))
    await asyncio.sleep(0.2)
    assert _value(registry, kind="a") == 1
    tally.add(("a",))
    stop.set()
    await asyncio.wait_for(flusher, 5)
    assert _value(registry, kind="a") == 2
