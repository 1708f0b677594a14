"""/metrics of every service, scraped over HTTP after real work: a campaign really sent
(sender, projector, API), a bounce folder really read (imap-sync), opens answered by two
tracker worker processes, MCP tool calls.

The services of one test run in this process, so they share prometheus-client's registry:
each test reads the numbers from the port of the service that records them and checks
they moved by what the work did."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector

from pigeon_common import events as ev
from pigeon_common import metrics
from pigeon_common.jetstream import connect_nats, publish_event
from pigeon_common.render import TrackingSigner
from pigeon_embedded.nats import NatsServer
from pigeon_embedded.ports import free_port
from pigeon_mcp.service import serve as serve_mcp
from pigeon_projector.projector import PROJECTOR_LOCK_KEY
from pigeon_testing.dovecot import DovecotServer, ImapAccount
from pigeon_testing.metrics import Samples, scrape
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack, migrate, stack_settings
from pigeon_tracker.supervisor import Supervisor

from .sending_helpers import create_campaign, mailbox_for, people, wait_status

WAIT_SEC = 30.0
FLUSHED_SEC = metrics.FLUSH_EVERY_SEC + 0.5
SEND_ROUTE = "/api/v1/campaigns/{campaign_id}/send"


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}/metrics"


async def _eventually(probe: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_SEC
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def _first_scrape(url: str) -> Samples:
    """A scrape once the service's server answers (it may be starting)."""
    deadline = time.monotonic() + WAIT_SEC
    while True:
        try:
            return await scrape(url)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_a_sent_campaign_moves_the_sender_projector_and_api_metrics(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    settings, client = running_sender.settings, running_sender.client
    assert client is not None
    sender, projector, api = (
        _url(settings.sender_port),
        _url(settings.projector_port),
        _url(settings.api_port),
    )
    before_sender, before_projector, before_api = (
        await _first_scrape(sender),
        await _first_scrape(projector),
        await _first_scrape(api),
    )
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(7))
    started = await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": 3})
    assert started.status_code == 202, started.text
    await wait_status(client, campaign_id, {"done"})

    after = await scrape(sender)

    def moved(name: str, **labels: str) -> float:
        return after.get(name, **labels) - before_sender.get(name, **labels)

    assert moved("pigeon_sender_messages_total", outcome="sent") == 7
    assert moved("pigeon_sender_messages_total", outcome="failed") == 0
    assert moved("pigeon_sender_smtp_reply_seconds_count") == 7
    assert moved("pigeon_sender_smtp_reply_seconds_sum") > 0
    assert moved("pigeon_sender_copies_filed_total") == 7
    assert moved("pigeon_sender_chunks_total") >= 3  # a job may come back once projected
    assert after.get("pigeon_sender_chunks_in_flight") == 0
    assert moved("pigeon_events_stored_total", type="message.sent") == 7
    assert moved("pigeon_events_stored_total", type="sent_copies.filed") == 3
    assert moved("pigeon_events_failed_total", type="message.sent") == 0

    async def caught_up() -> bool:
        now = await scrape(projector)
        return (
            now.get("pigeon_projector_lag_events") == 0
            and now.get("pigeon_projector_applied_sequence")
            == now.get("pigeon_projector_stream_sequence")
            and now.get("pigeon_projector_events_applied_total")
            >= before_projector.get("pigeon_projector_events_applied_total") + 7
        )

    await _eventually(caught_up, "the projector's lag back to 0 after the campaign")
    settled = await scrape(projector)
    assert settled.get("pigeon_projector_lag_seconds") == 0
    assert settled.get("pigeon_projector_copies_pending") == 0
    assert settled.get("pigeon_projector_stream_sequence") > before_projector.get(
        "pigeon_projector_stream_sequence"
    )

    api_after = await scrape(api)
    sends = ("pigeon_api_requests_total", {"method": "POST", "route": SEND_ROUTE, "status": "202"})
    assert api_after.get(sends[0], **sends[1]) - before_api.get(sends[0], **sends[1]) == 1
    assert api_after.get("pigeon_api_request_duration_seconds_count", route=SEND_ROUTE) >= 1
    # A route template, never an id: no series names this campaign.
    assert not any(campaign_id in str(labels) for _, labels in api_after.values)
    assert not any(campaign_id in str(labels) for _, labels in after.values)


async def test_the_projector_reports_lag_while_it_is_behind(
    running_sender: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    """With the projector's work held up (its lock taken), events wait in the stream:
    /metrics says how many and for how long; released, the lag goes back to 0."""
    settings = running_sender.settings
    assert settings.database_url is not None and settings.nats_url is not None
    projector = _url(settings.projector_port)
    blocker = await asyncpg.connect(settings.database_url)
    nc = await connect_nats(settings.nats_url, name="test-lag", attempts=3)
    try:
        await blocker.execute("SELECT pg_advisory_lock($1)", PROJECTOR_LOCK_KEY)
        for i in range(3):
            email = f"lag-{i}-{uuid.uuid4().hex[:6]}@example.org"
            event = ev.AddressSuppressed(email=email, mailbox_id=None, reason="manual")
            await publish_event(nc.jetstream(), ev.envelope_for(event, email))

        async def lagging() -> bool:
            now = await scrape(projector)
            return (
                now.get("pigeon_projector_lag_events") >= 1
                and now.get("pigeon_projector_lag_seconds") >= 1.0
            )

        await _eventually(lagging, "lag reported while the projector is held up")
    finally:
        await nc.close()
        await blocker.execute("SELECT pg_advisory_unlock($1)", PROJECTOR_LOCK_KEY)
        await blocker.close()

    async def caught_up() -> bool:
        now = await scrape(projector)
        return now.get("pigeon_projector_lag_events") == 0

    await _eventually(caught_up, "lag back to 0 once the projector runs again")
    assert (await scrape(projector)).get("pigeon_projector_lag_seconds") == 0


async def test_imap_sync_counts_runs_per_mailbox_and_their_errors(
    running_sender: Stack, smtp: SmtpTestServer, dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    settings, client = running_sender.settings, running_sender.client
    assert client is not None
    dovecot.create_folder(imap_user.username, "Bounces")
    dovecot.deliver(
        imap_user.username,
        "Bounces",
        b"From: a@b.example\r\nSubject: hello\r\n\r\nnot about any message of ours\r\n",
    )
    good = await client.post(
        "/api/v1/mailboxes", json=mailbox_for(smtp, imap_user, bounce_folder="Bounces")
    )
    assert good.status_code == 201, good.text
    broken_body = mailbox_for(smtp, imap_user, bounce_folder="Bounces", name="Away")
    broken_body["imap"]["port"] = free_port()  # nothing listens there
    broken = await client.post("/api/v1/mailboxes", json=broken_body)
    assert broken.status_code == 201, broken.text
    good_id, broken_id = good.json()["id"], broken.json()["id"]
    url = _url(settings.imap_sync_port)
    started_at = time.time()
    handle = running_sender.start_imap_sync(imap_sync_interval=3600)
    try:

        async def both_seen() -> bool:
            try:
                now = await scrape(url)
            except httpx.HTTPError:
                return False
            return (
                now.get("pigeon_imap_sync_runs_total", mailbox=good_id, result="ok") >= 1
                and now.get("pigeon_imap_sync_runs_total", mailbox=broken_id, result="error") >= 1
            )

        await _eventually(both_seen, "a good and a failing mailbox's runs counted")
        now = await scrape(url)
        assert now.get("pigeon_imap_sync_runs_total", mailbox=good_id, result="error") == 0
        assert now.get("pigeon_imap_sync_runs_total", mailbox=broken_id, result="ok") == 0
        last = now.get("pigeon_imap_sync_last_success_timestamp_seconds", mailbox=good_id)
        assert started_at - 1 <= last <= time.time()
        assert now.get("pigeon_imap_sync_last_success_timestamp_seconds", mailbox=broken_id) == 0
        assert now.get("pigeon_imap_sync_messages_total", kind="ignored") >= 1
    finally:
        await handle.stop()
        for mailbox_id in (good_id, broken_id):
            await client.delete(f"/api/v1/mailboxes/{mailbox_id}")


async def test_tracker_workers_count_every_request_whichever_answers_the_scrape(
    tmp_path: Path, fresh_database: str
) -> None:
    """Two worker processes on one port: every scrape, whichever worker answers it,
    counts the opens both answered, also after a worker was killed and replaced."""
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        await migrate(fresh_database)
        settings = stack_settings(
            fresh_database,
            nats.url,
            tmp_path / "data",
            tracker_port=free_port(),
            tracker_workers=2,
            tracker_events_per_minute=0,
        )
        signer = TrackingSigner(settings.keys())
        pixel = f"/campaigns/o/{signer.message_token(uuid.uuid4(), uuid.uuid4())}/p.png"
        supervisor = Supervisor(settings)
        task = asyncio.create_task(supervisor.run(stop))
        base = f"http://127.0.0.1:{settings.tracker_port}"

        async def all_ready() -> bool:
            for _ in range(10):
                try:
                    async with httpx.AsyncClient(base_url=base, timeout=5) as fresh:
                        if (await fresh.get("/readyz")).status_code != 200:
                            return False
                except httpx.HTTPError:
                    return False
            return True

        await _eventually(all_ready, "both tracker workers ready")
        opens = 30
        for _ in range(opens):
            await _open_once(base, pixel)
        await asyncio.sleep(FLUSHED_SEC)  # each worker writes its counts out every second
        assert supervisor.metrics_dir is not None
        per_worker = [
            _opens(_samples_of(path)) for path in supervisor.metrics_dir.glob("counter_*.db")
        ]
        # Both workers answered opens (all 30 on one: odds 2 in 2**30), and a scrape sums them.
        assert len(per_worker) == 2 and min(per_worker) > 0, per_worker

        scrapes = [await scrape(f"{base}/metrics") for _ in range(6)]
        for samples in scrapes:
            assert _opens(samples) == opens
            assert samples.get("pigeon_events_stored_total", type="message.opened") == opens

        first = supervisor.pids
        os.kill(first[0], signal.SIGKILL)

        async def replaced() -> bool:
            now = supervisor.pids
            return len(now) == 2 and now[0] != first[0]

        await _eventually(replaced, "the killed worker replaced")
        await _eventually(all_ready, "both tracker workers ready again")
        await _open_once(base, pixel)
        await asyncio.sleep(FLUSHED_SEC)
        for _ in range(4):  # the dead worker's counts are kept
            assert _opens(await scrape(f"{base}/metrics")) == opens + 1
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, timeout=30)
        nats.stop()


async def _open_once(base: str, pixel: str) -> None:
    """One open answered 200, on a new connection (the kernel spreads them over the
    workers). A worker that listens but is not connected yet answers 503, counted under
    its own answer: try again."""
    for _ in range(100):
        async with httpx.AsyncClient(base_url=base, timeout=10) as fresh:
            status = (await fresh.get(pixel)).status_code
        if status == 200:
            return
        assert status == 503, status
        await asyncio.sleep(0.1)
    raise AssertionError("no open answered 200")


def _opens(samples: Samples) -> float:
    return samples.get("pigeon_tracker_requests_total", route="open", answer="200")


def _samples_of(path: Path) -> Samples:
    """The counts one worker process wrote to its file."""
    values = {}
    files = [str(path)]
    for family in MultiProcessCollector.merge(files, accumulate=True):  # type: ignore[no-untyped-call]
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Samples(values)


async def test_events_not_stored_are_counted_as_failed(tmp_path: Path) -> None:
    """A publish JetStream refuses (no stream holds its subject: none was provisioned)
    counts as failed, not stored."""
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    try:
        nc = await connect_nats(nats.url, name="test", attempts=3)
        try:
            event = ev.AddressSuppressed(email="x@example.org", mailbox_id=None, reason="manual")
            envelope = ev.envelope_for(event, "x@example.org")
            labels = {"type": envelope.type}
            failed_before = _registry_value("pigeon_events_failed_total", labels)
            stored_before = _registry_value("pigeon_events_stored_total", labels)
            with pytest.raises(Exception):  # noqa: B017 (nats-py's kind does not matter)
                await publish_event(nc.jetstream(), envelope)
            assert _registry_value("pigeon_events_failed_total", labels) == failed_before + 1
            assert _registry_value("pigeon_events_stored_total", labels) == stored_before
        finally:
            await nc.close()
    finally:
        nats.stop()


def _registry_value(name: str, labels: dict[str, str]) -> float:
    metrics.flush_all()  # as a scrape does
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_mcp_gateway_counts_tool_calls_by_tool_and_result(
    sending_stack: Stack,
) -> None:
    settings = sending_stack.settings.model_copy(update={"mcp_port": free_port()})
    stop = asyncio.Event()
    task = asyncio.create_task(serve_mcp(settings, stop))
    base = f"http://127.0.0.1:{settings.mcp_port}"
    calls = "pigeon_mcp_tool_calls_total"
    try:
        before = await _first_scrape(f"{base}/metrics")
        headers = {"Authorization": f"Bearer {sending_stack.token}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
        ):
            assert not (await client.call_tool("list_campaigns", {})).is_error
            assert not (await client.call_tool("list_campaigns", {})).is_error
            missing = await client.call_tool("get_campaign", {"campaign_id": str(uuid.uuid4())})
            assert missing.is_error
            made_up = await client.call_tool("no_such_tool", {})
            assert made_up.is_error
        after = await scrape(f"{base}/metrics")

        def moved(tool: str, result: str) -> float:
            return after.get(calls, tool=tool, result=result) - before.get(
                calls, tool=tool, result=result
            )

        assert moved("list_campaigns", "ok") == 2
        assert moved("get_campaign", "error") == 1
        assert moved("unknown", "error") == 1
        assert after.get(calls, tool="no_such_tool", result="error") == 0  # never a label
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
