"""The click destinations of each campaign, read once and kept in memory.

A campaign's links are registered when it starts sending and never change after, so a
campaign that has them is cached for good (up to `max_campaigns`, oldest first out). A
campaign without any yet (a new one the projector has not reached, or an unknown one) is
remembered as empty only for `miss_ttl` seconds, so a brand-new campaign starts working
at once. Concurrent misses of one campaign share a single query.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pigeon_tracker.envelopes import json_string
from pigeon_tracker.responses import redirect_start

LoadLinks = Callable[[uuid.UUID], Awaitable[Sequence[tuple[int, str]]]]


@dataclass(frozen=True, slots=True)
class Link:
    """A registered destination: as it goes into the Location header, and as registered,
    written as the JSON string literal of the click event's `url`. `start` is the 302's
    ASGI start message, built once with the link (sent as is for every click)."""

    location: str
    json: str
    start: dict[str, Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", redirect_start(self.location.encode()))


MISS_TTL_SEC = 1.0
MAX_CAMPAIGNS = 10_000
# Characters a Location header may carry as they are; the rest is percent-encoded (which
# also makes a CR or LF in a registered URL harmless).
_URL_SAFE = "!#$%&'()*+,-./:;=?@[]_~"


def location_of(url: str) -> str:
    """The URL as it can go into a Location header: ASCII, no control characters."""
    if url.isascii() and url.isprintable() and " " not in url:
        return url
    return urllib.parse.quote(url, safe=_URL_SAFE)


def _link(url: str) -> Link:
    return Link(location_of(url), json_string(url))


class LinkCache:
    """campaign id -> its registered links (index -> URL)."""

    def __init__(
        self,
        load: LoadLinks,
        *,
        miss_ttl: float = MISS_TTL_SEC,
        max_campaigns: int = MAX_CAMPAIGNS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._miss_ttl = miss_ttl
        self._max = max_campaigns
        self._clock = clock
        self._links: dict[uuid.UUID, dict[int, Link]] = {}
        self._misses: dict[uuid.UUID, float] = {}  # campaign -> when the miss expires
        self._loading: dict[uuid.UUID, asyncio.Future[dict[int, Link]]] = {}

    async def url(self, campaign_id: uuid.UUID, link_index: int) -> Link | None:
        """The registered destination of link `link_index`, None when there is none."""
        links = self._links.get(campaign_id)
        if links is None:
            links = await self._lookup(campaign_id)
        return links.get(link_index)

    async def _lookup(self, campaign_id: uuid.UUID) -> dict[int, Link]:
        expires = self._misses.get(campaign_id)
        if expires is not None:
            if self._clock() < expires:
                return {}
            del self._misses[campaign_id]
        pending = self._loading.get(campaign_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[dict[int, Link]] = asyncio.get_running_loop().create_future()
        self._loading[campaign_id] = future
        try:
            rows = await self._load(campaign_id)
            links = {index: _link(url) for index, url in rows}
            self._remember(campaign_id, links)
            future.set_result(links)
            return links
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: the waiters get it, or nobody needs it
            raise
        finally:
            del self._loading[campaign_id]

    def _remember(self, campaign_id: uuid.UUID, links: dict[int, Link]) -> None:
        if not links:
            if len(self._misses) >= self._max:
                self._misses.pop(next(iter(self._misses)))
            self._misses[campaign_id] = self._clock() + self._miss_ttl
            return
        if len(self._links) >= self._max:
            self._links.pop(next(iter(self._links)))
        self._links[campaign_id] = links
