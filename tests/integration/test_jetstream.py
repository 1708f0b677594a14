"""Provisioning and deduplicated publishing against a real nats-server."""

from __future__ import annotations

import uuid

from pigeon_common import events as ev
from pigeon_common.jetstream import (
    EVENTS_STREAM,
    JOBS_STREAM,
    STREAMS,
    connect_nats,
    provision,
    publish_event,
)
from pigeon_embedded.nats import NatsServer


async def test_provisioning_twice_changes_nothing(module_nats: NatsServer) -> None:
    nc = await connect_nats(module_nats.url, name="test", attempts=3)
    try:
        js = nc.jetstream()
        first = await provision(js)
        before = {s.name: await js.stream_info(s.name) for s in STREAMS}
        second = await provision(js)
        after = {s.name: await js.stream_info(s.name) for s in STREAMS}
        assert (
            first == [f"created stream {EVENTS_STREAM}", f"created stream {JOBS_STREAM}"]
            or first == []
        )
        assert second == []
        for name in before:
            assert before[name].config == after[name].config
            assert before[name].created == after[name].created
        assert after[EVENTS_STREAM].config.duplicate_window >= 120
    finally:
        await nc.close()


async def test_provisioning_repairs_drift(module_nats: NatsServer) -> None:
    nc = await connect_nats(module_nats.url, name="test", attempts=3)
    try:
        js = nc.jetstream()
        await provision(js)
        info = await js.stream_info(EVENTS_STREAM)
        await js.update_stream(config=info.config.evolve(duplicate_window=30.0))
        assert await provision(js) == [f"updated stream {EVENTS_STREAM}"]
        assert (await js.stream_info(EVENTS_STREAM)).config.duplicate_window == 300
    finally:
        await nc.close()


async def test_publish_with_same_msg_id_is_stored_once(module_nats: NatsServer) -> None:
    nc = await connect_nats(module_nats.url, name="test", attempts=3)
    try:
        js = nc.jetstream()
        await provision(js)
        before = (await js.stream_info(EVENTS_STREAM)).state.messages
        campaign_id = uuid.uuid4()
        envelope = ev.envelope_for(ev.CampaignDeleted(campaign_id=campaign_id), str(campaign_id))
        first = await publish_event(js, envelope)
        again = await publish_event(js, envelope)
        assert first == again
        other = await publish_event(js, envelope, msg_id="another-id")
        assert other == first + 1
        after = (await js.stream_info(EVENTS_STREAM)).state.messages
        assert after == before + 2
    finally:
        await nc.close()
