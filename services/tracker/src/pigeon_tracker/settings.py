"""The tracker's settings: the shared base, where it listens, and its own."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from pigeon_common.settings import SharedSettings, TrackerAddress


class TrackerSettings(SharedSettings, TrackerAddress):
    """What the tracker reads."""

    service: ClassVar[str] = "tracker"

    tracker_workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=2,
        description="Tracker worker processes sharing the port (SO_REUSEPORT); one per core.",
    )
    tracker_trusted_proxies: Annotated[int, Field(ge=0, le=10)] = Field(
        default=0,
        description="Proxies (CDN, load balancer) in front of the tracker whose "
        "X-Forwarded-For entries are trusted to name the client; 0 uses the peer address.",
    )
    tracker_events_per_minute: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=10,
        description="Opens of one message, or clicks of one link of one message, recorded "
        "per minute by each tracker worker; further fetches that minute are answered "
        "(200/302) but not stored. 0 records every fetch.",
    )
