"""The in-memory link cache: kept for good once found, misses remembered briefly, one
query for concurrent misses, destinations made safe for a Location header."""

from __future__ import annotations

import asyncio
import uuid

from pigeon_tracker.links import Link, LinkCache, location_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_found_links_are_kept_and_misses_expire() -> None:
    known, fresh = uuid.uuid4(), uuid.uuid4()
    table: dict[uuid.UUID, list[tuple[int, str]]] = {
        known: [(0, "https://a.example/"), (1, "https://b.example/")]
    }
    queries: list[uuid.UUID] = []

    async def load(campaign_id: uuid.UUID) -> list[tuple[int, str]]:
        queries.append(campaign_id)
        await asyncio.sleep(0.01)
        return table.get(campaign_id, [])

    clock = Clock()
    cache = LinkCache(load, miss_ttl=1.0, clock=clock)
    got = await asyncio.gather(*(cache.url(known, 1) for _ in range(20)))
    assert got == [Link("https://b.example/", '"https://b.example/"')] * 20
    assert await cache.url(known, 0) == Link("https://a.example/", '"https://a.example/"')
    assert await cache.url(known, 2) is None
    assert queries == [known]  # one query for twenty concurrent misses, none after

    assert await cache.url(fresh, 0) is None
    table[fresh] = [(0, "https://new.example/")]  # the projector reaches the new campaign
    assert await cache.url(fresh, 0) is None  # still the remembered miss
    clock.now = 1.5
    assert (await cache.url(fresh, 0)) == Link("https://new.example/", '"https://new.example/"')
    assert queries == [known, fresh, fresh]


async def test_a_failed_load_is_not_remembered() -> None:
    campaign = uuid.uuid4()
    calls = 0

    async def load(campaign_id: uuid.UUID) -> list[tuple[int, str]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database away")
        return [(0, "https://ok.example/")]

    cache = LinkCache(load)
    try:
        await cache.url(campaign, 0)
    except OSError:
        pass
    else:
        raise AssertionError("the error must reach the caller")
    link = await cache.url(campaign, 0)
    assert link is not None and link.location == "https://ok.example/"


async def test_the_event_keeps_the_registered_spelling() -> None:
    async def load(campaign_id: uuid.UUID) -> list[tuple[int, str]]:
        return [(0, 'https://example.com/café?q="x"')]

    link = await LinkCache(load).url(uuid.uuid4(), 0)
    assert link == Link(
        "https://example.com/caf%C3%A9?q=%22x%22", '"https://example.com/café?q=\\"x\\""'
    )


def test_locations_are_ascii_without_controls() -> None:
    assert location_of("https://example.com/a?b=1&c=%20") == "https://example.com/a?b=1&c=%20"
    assert location_of("https://example.com/é") == "https://example.com/%C3%A9"
    assert location_of("https://example.com/\r\nSet-Cookie: x") == (
        "https://example.com/%0D%0ASet-Cookie:%20x"
    )
