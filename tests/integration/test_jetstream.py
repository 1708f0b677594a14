"""Provisioning, deduplicated and retried publishing, and pulling against a real
nats-server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig

from pigeon_common import events as ev
from pigeon_common.jetstream import (
    DEFAULT_PUBLISH_RETRY_SEC,
    EVENTS_STREAM,
    JOBS_STREAM,
    STREAMS,
    Header,
    PublishFailedError,
    configure_publish_retry,
    connect_nats,
    provision,
    publish_encoded,
    publish_event,
    store,
    store_nowait,
)
from pigeon_embedded.nats import NatsServer
from pigeon_projector.pull import BatchPuller, PullStalledError


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


async def test_many_encoded_events_are_stored_in_order_through_a_small_window(
    module_nats: NatsServer,
) -> None:
    nc = await connect_nats(module_nats.url, name="test", attempts=3)
    try:
        js = nc.jetstream()
        await provision(js)
        campaigns = [uuid.uuid4() for _ in range(25)]
        produced: list[uuid.UUID] = []

        def events() -> Iterator[ev.EncodedEvent]:
            for campaign_id in campaigns:  # read as it is sent
                produced.append(campaign_id)
                event = ev.CampaignDeleted(campaign_id=campaign_id)
                yield ev.encoded(ev.envelope_for(event, str(campaign_id)))

        seqs = await publish_encoded(js, events(), window=4)
        assert produced == campaigns
        assert seqs == list(range(seqs[0], seqs[0] + len(campaigns)))
        for seq, campaign_id in zip(seqs, campaigns, strict=True):
            stored = ev.decode_envelope((await js.get_msg(EVENTS_STREAM, seq)).data or b"")
            assert stored.aggregate_id == str(campaign_id)
    finally:
        await nc.close()


async def test_a_refused_publish_is_retried_until_the_stream_answers(
    module_nats: NatsServer,
) -> None:
    """As in a leader election: no stream answers the subject at first ("no responders"),
    then one does; the publish waits it out and is stored once."""
    nc = await connect_nats(module_nats.url, name="test", attempts=3)
    try:
        js = nc.jetstream()
        subject = f"retry.{uuid.uuid4().hex}"
        stream = f"RETRY_{uuid.uuid4().hex[:8]}"
        publishing = asyncio.create_task(
            store(js, subject, b"one", {Header.MSG_ID: "m1"}, stream=stream)
        )
        await asyncio.sleep(1.0)
        assert not publishing.done()  # refused so far, still trying
        await js.add_stream(StreamConfig(name=stream, subjects=[subject]))
        ack = await asyncio.wait_for(publishing, timeout=10)
        assert ack.seq == 1
        later = await store_nowait(js, subject, b"one", {Header.MSG_ID: "m1"}, stream=stream)
        assert (await later).duplicate  # the same id again: stored once
        assert (await js.stream_info(stream)).state.messages == 1
        await js.delete_stream(stream)
    finally:
        await nc.close()


async def test_a_publish_refused_for_the_whole_window_fails(module_nats: NatsServer) -> None:
    nc = await connect_nats(module_nats.url, name="test", attempts=3)
    configure_publish_retry(0.8)
    try:
        js = nc.jetstream()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PublishFailedError) as failed:
            await store(js, f"nowhere.{uuid.uuid4().hex}", b"x", {Header.MSG_ID: "n1"})
        assert 0.3 < loop.time() - started < 3.0
        assert "NoStreamResponseError" in failed.value.reason
        pending = await store_nowait(js, f"nowhere.{uuid.uuid4().hex}", b"x")
        with pytest.raises(PublishFailedError):
            await pending
    finally:
        configure_publish_retry(DEFAULT_PUBLISH_RETRY_SEC)
        await nc.close()


async def test_a_puller_whose_consumer_vanished_says_so(module_nats: NatsServer) -> None:
    """A consumer that disappears with its server leaves the pull request unanswered: the
    puller raises PullStalledError instead of waiting forever."""
    nc = await connect_nats(module_nats.url, name="test", attempts=3)
    try:
        js = nc.jetstream()
        stream = f"PULL_{uuid.uuid4().hex[:8]}"
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"]))
        await js.publish(f"{stream}.a", b"1")
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=60
        )
        puller = BatchPuller(nc, js, stream, config, batch=10, expires_sec=0.5)
        await puller.start()
        assert len(await puller.next_batch(10, timeout=2)) == 1
        await js.delete_consumer(stream, puller.consumer)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        with pytest.raises(PullStalledError):
            while loop.time() < deadline:
                await puller.next_batch(10, timeout=0.5)
        await puller.stop()
        await js.delete_stream(stream)
    finally:
        await nc.close()
