"""The short cluster drill: a 3-node JetStream cluster (R3 streams and buckets), the API,
projector, a sender and the tracker; a campaign of 1,000 recipients (50 a second) with
tracker and API traffic while the EVENTS leader and then the JOBS leader are SIGKILLed
and restarted. Nothing accepted may be lost or sent twice, and the campaign finishes
(the full drill is bench/cluster.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeon_cli.settings import AllSettings
from pigeon_common.jetstream import connect_nats, provision
from pigeon_common.jobs import BUCKETS, KV_STREAM_PREFIX, provision_sending
from pigeon_testing.cluster_drill import DrillPlan, run_drill
from pigeon_testing.nats_cluster import NatsCluster
from pigeon_testing.smtp import SmtpTestServer
from pigeon_tracker.service import Tracker

log = logging.getLogger(__name__)


class InLoopServices:
    """A sender and a tracker in the test's event loop."""

    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._tracker: Tracker | None = None

    async def start(self, settings: AllSettings) -> str:
        from pigeon_sender.service import serve as serve_sender

        self._sender = asyncio.create_task(serve_sender(settings, self._stop))
        self._tracker = Tracker(settings)
        await self._tracker.start()
        return self._tracker.url

    async def stop(self) -> None:
        self._stop.set()
        if self._tracker is not None:
            await self._tracker.close()
        if self._sender is not None:
            await asyncio.wait_for(self._sender, timeout=30)


@pytest.fixture
def drill_smtp() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


async def test_buckets_get_the_replicas_asked_for(nats_cluster: NatsCluster) -> None:
    """Every KV bucket the sender keeps state in is replicated like the streams, also one
    made earlier with fewer copies."""
    nc = await connect_nats(nats_cluster.url, name="test", attempts=3)
    try:
        js = nc.jetstream()
        await provision(js, 3)
        await provision_sending(js, 1)
        changed = await provision_sending(js, 3)
        assert changed == [f"updated bucket {name}: 3 replicas" for name, _ in BUCKETS]
        for name, _ in BUCKETS:
            info = await js.stream_info(f"{KV_STREAM_PREFIX}{name}")
            assert info.config.num_replicas == 3
        assert await provision_sending(js, 3) == []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        for name, _ in BUCKETS:  # the copies take a moment to be placed
            while True:
                info = await js.stream_info(f"{KV_STREAM_PREFIX}{name}")
                cluster = info.cluster
                if cluster is not None and cluster.leader and len(cluster.replicas or []) == 2:
                    break
                assert loop.time() < deadline, f"{name}: {cluster}"
                await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def test_leader_kills_lose_and_double_nothing(
    nats_cluster: NatsCluster, fresh_database: str, drill_smtp: SmtpTestServer, tmp_path: Path
) -> None:
    plan = DrillPlan(
        recipients=1_000, rate_per_second=50, down_sec=3.0, tracker_rate=40.0, api_rate=4.0
    )
    result = await run_drill(
        nats_cluster, fresh_database, drill_smtp, InLoopServices(), tmp_path, plan
    )
    log.info("%s; kills: %s", result.line(), result.kills)
    print(result.line())
    assert len(result.kills) == 2, result.kills  # both while the campaign was sending
    assert result.duplicated == 0, result.line()
    assert result.lost == 0, result.line()
    assert result.tracker_200_but_lost == 0, result.line()
    assert result.api_2xx_but_lost == 0, result.line()
    assert result.sent + result.unknown == plan.recipients, result.line()
    assert result.tracker_200 > 0 and result.api_2xx > 0, result.line()
