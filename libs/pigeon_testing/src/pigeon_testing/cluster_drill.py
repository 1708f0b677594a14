"""The cluster drill: a campaign, tracker and API traffic running while the leaders of the
EVENTS and JOBS streams are SIGKILLed and restarted; then what was lost or doubled.

Shared by `tests/integration/test_cluster.py` (short, services in the test's event loop)
and `bench/cluster.py` (full, services as processes). The caller brings a started
`NatsCluster`, an empty database, a recording SMTP server and a way to start the sender
and the tracker (`Services`); the API and the projector run in this event loop.

What is counted:
- **duplicated**: recipients the SMTP server accepted the campaign for more than once;
- **lost**: recipients the SMTP server accepted with no outcome in the read model, or
  one that says it was not sent (`failed`, `queued`);
- **sent-but-unknown**: recipients the SMTP server accepted whose outcome is `unknown`
  ("may have gone out"): what a sender cut off from NATS for longer than it retries
  leaves, as another sender takes its job over (never resent, but not known as sent);
- **tracker 503** / **tracker 200-but-lost**: open-pixel fetches answered 503, and
  those answered 200 whose `message.opened` event (found by the fetch's own User-Agent)
  is not in the EVENTS stream afterwards;
- **api 5xx** / **api 2xx-but-lost**: single-recipient adds answered 5xx, and those
  answered 2xx whose recipient is not in the read model afterwards;
- **recovery**: per kill, the seconds until the stream answered `STREAM.INFO` with a new
  leader; the largest is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from pigeon_cli.settings import AllSettings
from pigeon_common.events import EVENT_SUBJECT_PREFIX
from pigeon_common.jetstream import EVENTS_STREAM, JOBS_STREAM, connect_nats
from pigeon_common.render import TrackingSigner
from pigeon_projector.pull import BatchPuller
from pigeon_testing.nats_cluster import NatsCluster, leader
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack, stack_settings

log = logging.getLogger(__name__)
API = "/api/v1"
BULK = 10_000
POLL_SEC = 0.2
OPENED_SUBJECT = f"{EVENT_SUBJECT_PREFIX}.message.opened"
AGENT_PREFIX = "cluster-drill/"


class Services(Protocol):
    """Starts the sender(s) and the tracker for the drill's settings; stops them."""

    async def start(self, settings: AllSettings) -> str:
        """Start them; returns the tracker's base URL once it is ready."""
        ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class DrillPlan:
    recipients: int = 1_000
    # What happens to the leader of a stream, in order: "kill" (SIGKILL, restarted after
    # down_sec) or "cut" (partitioned for down_sec, then healed; needs the cluster's
    # nodes on hosts of their own, see pigeon_testing.netns).
    disruptions: tuple[tuple[str, str], ...] = (("kill", EVENTS_STREAM), ("kill", JOBS_STREAM))
    down_sec: float = 3.0  # a killed or cut node stays away this long
    tracker_rate: float = 50.0  # open-pixel fetches a second
    api_rate: float = 5.0  # single-recipient adds a second
    batch_size: int = 50
    # The mailbox's send rate, so that every kill falls while the campaign is sending.
    rate_per_second: int | None = None
    first_kill_share: float = 0.2  # the first kill once this share is sent; the next
    # ones as soon as the cluster is current again after the previous restart
    timeout_sec: float = 240.0


@dataclass
class DrillResult:
    recipients: int = 0
    sent: int = 0
    unknown: int = 0
    lost: int = 0
    sent_but_unknown: int = 0
    duplicated: int = 0
    tracker_200: int = 0
    tracker_503: int = 0
    tracker_other: int = 0
    tracker_200_but_lost: int = 0
    api_2xx: int = 0
    api_5xx: int = 0
    api_2xx_but_lost: int = 0
    recovery_sec: list[float] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    campaign_seconds: float = 0.0

    def line(self) -> str:
        recovery = max(self.recovery_sec, default=0.0)
        return (
            f"cluster: lost {self.lost}, duplicated {self.duplicated}, "
            f"tracker 503 {self.tracker_503}, tracker 200-but-lost {self.tracker_200_but_lost}, "
            f"api 5xx {self.api_5xx}, recovery {recovery:.1f} s "
            f"(sent-but-unknown {self.sent_but_unknown}, unknown {self.unknown}, "
            f"api 2xx-but-lost {self.api_2xx_but_lost}, "
            f"tracker 200 {self.tracker_200}, api 2xx {self.api_2xx})"
        )


def drill_settings(
    database_url: str, cluster: NatsCluster, data_dir: Path, **overrides: Any
) -> AllSettings:
    """The settings of every service in the drill: all cluster nodes, 3 replicas."""
    values: dict[str, Any] = {
        "jetstream_replicas": 3,
        "tracker_events_per_minute": 0,  # every fetch is stored: each one is checked
        "tracker_workers": 1,
        "mailbox_hosts_loopback_only": True,
        "public_base_url": "http://127.0.0.1:9",  # replaced by the tracker's own below
        # Longer than an election (up to ~10 s): a running chunk whose heartbeats are lost
        # meanwhile is not handed to another sender (which would call its in-flight
        # recipients unknown), as docs/operations.md advises for a cluster.
        "job_ack_wait_sec": 20.0,
    }
    values.update(overrides)
    return stack_settings(database_url, cluster.url, data_dir, **values)


async def run_drill(
    cluster: NatsCluster,
    database_url: str,
    smtp: SmtpTestServer,
    services: Services,
    data_dir: Path,
    plan: DrillPlan,
) -> DrillResult:
    settings = drill_settings(database_url, cluster, data_dir, batch_size=plan.batch_size)
    stack = Stack(settings)
    await stack.start()
    result = DrillResult(recipients=plan.recipients)
    try:
        tracker_url = await services.start(settings)
        try:
            await _drill(stack, cluster, smtp, tracker_url, plan, result)
        finally:
            await services.stop()
    finally:
        await stack.close()
    return result


async def _drill(
    stack: Stack,
    cluster: NatsCluster,
    smtp: SmtpTestServer,
    tracker_url: str,
    plan: DrillPlan,
    result: DrillResult,
) -> None:
    client = stack.client
    assert client is not None and stack.settings.database_url is not None
    campaign_id = await _campaign(client, smtp, plan.recipients, plan.rate_per_second)
    draft_id = await _draft(client, smtp)
    nc = await connect_nats(cluster.url, name="drill", attempts=3)
    js = nc.jetstream(timeout=1.0)  # a STREAM.INFO to a dead leader must not hide a new one
    stop_load = asyncio.Event()
    signer = TrackingSigner(stack.settings.keys())
    ids = await _recipient_ids(stack.settings.database_url, campaign_id)
    tracker = _TrackerLoad(tracker_url, signer, uuid.UUID(campaign_id), ids, plan.tracker_rate)
    api = _ApiLoad(client, draft_id, plan.api_rate)
    loads = [
        asyncio.create_task(tracker.run(stop_load)),
        asyncio.create_task(api.run(stop_load)),
    ]
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        answer = await client.post(f"{API}/campaigns/{campaign_id}/send", json={})
        if answer.status_code not in (200, 202):
            raise RuntimeError(f"send: HTTP {answer.status_code} {answer.text[:300]}")
        kills = list(plan.disruptions)
        first_kill_at = int(plan.recipients * plan.first_kill_share)
        state: dict[str, Any] = {}
        while True:
            state = (await client.get(f"{API}/campaigns/{campaign_id}/status")).json()
            sending = state.get("status") == "sending"
            if kills and sending and int(state.get("sent") or 0) >= first_kill_at:
                action, stream = kills.pop(0)
                await _disrupt(cluster, js, action, stream, plan.down_sec, result)
                result.kills[-1] += f" at {state.get('sent')} sent"
                continue
            if state.get("status") == "done":
                break
            if state.get("status") in {"failed", "cancelled", "paused"}:
                raise RuntimeError(f"campaign ended {state.get('status')}: {state}")
            if loop.time() - started > plan.timeout_sec:
                raise TimeoutError(f"campaign not done after {plan.timeout_sec} s: {state}")
            await asyncio.sleep(POLL_SEC)
        result.campaign_seconds = loop.time() - started
        log.info("campaign done after %.1f s: %s", result.campaign_seconds, state)
        if kills:
            raise RuntimeError(f"the campaign ended before {kills} could happen")
    finally:
        stop_load.set()
        await asyncio.gather(*loads, return_exceptions=True)
    result.tracker_200, result.tracker_503 = tracker.ok, tracker.unavailable
    result.tracker_other = tracker.other
    result.api_2xx, result.api_5xx = len(api.accepted), api.failed
    try:
        await _wait_projected(js, stack.settings.database_url)
        await _count(stack.settings.database_url, nc, js, smtp, campaign_id, result)
        result.tracker_200_but_lost = _missing(tracker.answered_200, await _opened_agents(nc, js))
        drafted = await _emails(stack.settings.database_url, draft_id)
        result.api_2xx_but_lost = _missing(api.accepted, drafted)
    finally:
        await nc.close()


async def _disrupt(
    cluster: NatsCluster,
    js: JetStreamContext,
    action: str,
    stream: str,
    down_sec: float,
    result: DrillResult,
) -> None:
    """SIGKILL (or cut off) the stream's leader, time the new leader, restart (heal) the
    node after `down_sec` and wait until every node is current again."""
    victim = await _retrying(lambda: leader(js, stream))
    killed_at = time.monotonic()
    if action == "kill":
        cluster.node(victim).kill()
    else:
        cluster.cut(victim)
    result.kills.append(f"{action} {stream} leader {victim}")
    log.info("%s %s, the leader of %s", action, victim, stream)
    while True:
        with contextlib.suppress(Exception):
            now_leader = await leader(js, stream)
            if now_leader != victim:
                break
        await asyncio.sleep(0.1)
    recovery = time.monotonic() - killed_at
    result.recovery_sec.append(recovery)
    log.info("%s has a new leader %s after %.1f s", stream, now_leader, recovery)
    await asyncio.sleep(max(0.0, down_sec - recovery))
    if action == "kill":
        cluster.node(victim).start()
    else:
        cluster.heal(victim)
    took = await asyncio.to_thread(cluster.wait_healthy, 60.0)
    log.info("%s back; cluster current after %.1f s", victim, took)


async def _retrying(call: Callable[[], Awaitable[str]], attempts: int = 50) -> str:
    for _ in range(attempts - 1):
        with contextlib.suppress(Exception):
            return await call()
        await asyncio.sleep(0.2)
    return await call()


class _TrackerLoad:
    """Open-pixel fetches at `rate` a second, each with a User-Agent of its own."""

    def __init__(
        self,
        base_url: str,
        signer: TrackingSigner,
        campaign_id: uuid.UUID,
        recipient_ids: list[uuid.UUID],
        rate: float,
    ) -> None:
        self._urls = [
            f"{base_url}/campaigns/o/{signer.message_token(campaign_id, r)}/p.png"
            for r in recipient_ids
        ]
        self._rate = rate
        self.answered_200: list[str] = []
        self.ok = self.unavailable = self.other = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            pending: set[asyncio.Task[None]] = set()
            n = 0
            while not stop.is_set():
                task = asyncio.create_task(self._fetch(client, n))
                pending.add(task)
                task.add_done_callback(pending.discard)
                n += 1
                await asyncio.sleep(1 / self._rate)
            await asyncio.gather(*pending, return_exceptions=True)

    async def _fetch(self, client: httpx.AsyncClient, n: int) -> None:
        agent = f"{AGENT_PREFIX}{n}"
        try:
            answer = await client.get(
                self._urls[n % len(self._urls)], headers={"user-agent": agent}
            )
        except httpx.HTTPError:
            self.other += 1
            return
        if answer.status_code == 200:
            self.ok += 1
            self.answered_200.append(agent)
        elif answer.status_code == 503:
            self.unavailable += 1
        else:
            self.other += 1


class _ApiLoad:
    """Single-recipient adds to a draft campaign at `rate` a second."""

    def __init__(self, client: httpx.AsyncClient, campaign_id: str, rate: float) -> None:
        self._client = client
        self._campaign_id = campaign_id
        self._rate = rate
        self.accepted: list[str] = []
        self.failed = 0

    async def run(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            email = f"api{n}@example.com"
            n += 1
            try:
                answer = await self._client.post(
                    f"{API}/campaigns/{self._campaign_id}/recipients", json={"email": email}
                )
            except httpx.HTTPError:
                self.failed += 1
                continue
            if answer.status_code >= 500:
                self.failed += 1
            elif answer.status_code < 300:
                self.accepted.append(email)
            await asyncio.sleep(1 / self._rate)


# --- setup -------------------------------------------------------------------------------


def _mailbox(smtp: SmtpTestServer, name: str, rate: int | None = None) -> dict[str, Any]:
    return {
        **({"rate_per_second": rate} if rate else {}),
        "name": name,
        "from_name": "Drill",
        "from_address": "drill@example.com",
        "smtp": {
            "host": smtp.host,
            "port": smtp.port,
            "security": "plain",
            "username": "",
            "password": "",
        },
        "imap": {
            "host": "127.0.0.1",
            "port": 9,
            "security": "plain",
            "username": "drill",
            "password": "drill",
        },
        "sent_folder": "",
        "append_to_sent": "never",
    }


async def _created(answer: httpx.Response, what: str) -> str:
    if answer.status_code not in (200, 201, 202):
        raise RuntimeError(f"{what}: HTTP {answer.status_code} {answer.text[:300]}")
    return str(answer.json()["id"])


async def _campaign(
    client: httpx.AsyncClient, smtp: SmtpTestServer, recipients: int, rate: int | None
) -> str:
    mailbox = await _created(
        await client.post(f"{API}/mailboxes", json=_mailbox(smtp, "Drill", rate)), "mailbox"
    )
    campaign = await _created(
        await client.post(
            f"{API}/campaigns",
            json={
                "name": "Drill",
                "subject": "Hello {{ recipient.name }}",
                "template_markdown": "# Hi {{ recipient.name }}\n\n[a link](https://example.com/x)",
                "mailbox_id": mailbox,
            },
        ),
        "campaign",
    )
    rows = [{"email": f"user{i}@example.com", "name": f"User {i}"} for i in range(recipients)]
    for start in range(0, len(rows), BULK):
        added = await client.post(
            f"{API}/campaigns/{campaign}/recipients/bulk",
            json={"recipients": rows[start : start + BULK]},
            timeout=120,
        )
        if added.status_code not in (200, 201, 202):
            raise RuntimeError(f"bulk add: HTTP {added.status_code} {added.text[:300]}")
    deadline = time.monotonic() + 120
    while (await client.get(f"{API}/campaigns/{campaign}")).json()["recipient_count"] < recipients:
        if time.monotonic() > deadline:
            raise TimeoutError("recipients not projected")
        await asyncio.sleep(0.1)
    return campaign


async def _draft(client: httpx.AsyncClient, smtp: SmtpTestServer) -> str:
    """A draft campaign the API load adds recipients to."""
    mailbox = await _created(
        await client.post(f"{API}/mailboxes", json=_mailbox(smtp, "Drill drafts")), "mailbox"
    )
    return await _created(
        await client.post(
            f"{API}/campaigns",
            json={
                "name": "Drafts",
                "subject": "S",
                "template_markdown": "T",
                "mailbox_id": mailbox,
            },
        ),
        "draft campaign",
    )


async def _recipient_ids(database_url: str, campaign_id: str) -> list[uuid.UUID]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id FROM recipients WHERE campaign_id = $1 ORDER BY id", uuid.UUID(campaign_id)
        )
    finally:
        await conn.close()
    return [row["id"] for row in rows]


# --- counting ----------------------------------------------------------------------------


async def _wait_projected(js: JetStreamContext, database_url: str, timeout: float = 60) -> None:
    """Wait until the read models hold every event the stream has."""
    target = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            seq = await conn.fetchval("SELECT max(last_seq) FROM projection_checkpoints")
            if seq is not None and seq >= target:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"read models at {seq}, stream at {target}")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def _opened_agents(nc: NatsClient, js: JetStreamContext) -> set[str]:
    """The User-Agents of every `message.opened` event in the stream."""
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.NONE,
        filter_subject=OPENED_SUBJECT,
        inactive_threshold=60.0,
    )
    info = await js.stream_info(EVENTS_STREAM, subjects_filter=OPENED_SUBJECT)
    expected = (info.state.subjects or {}).get(OPENED_SUBJECT, 0)
    puller = BatchPuller(nc, js, EVENTS_STREAM, config, batch=1000)
    await puller.start()
    agents: set[str] = set()
    seen = 0
    try:
        while seen < expected:
            msgs = await puller.next_batch(1000, timeout=5.0)
            if not msgs:
                raise TimeoutError(f"read {seen} of {expected} opened events")
            seen += len(msgs)
            for msg in msgs:
                agents.add(str(json.loads(msg.data)["data"]["user_agent"]))
    finally:
        await puller.stop()
    return agents


async def _count(
    database_url: str,
    nc: NatsClient,
    js: JetStreamContext,
    smtp: SmtpTestServer,
    campaign_id: str,
    result: DrillResult,
) -> None:
    """Duplicates at the SMTP server, and accepted recipients not recorded as sent."""
    accepted = Counter(
        address.lower()
        for message in smtp.messages
        if campaign_id.encode() in message.data
        for address in message.rcpt_tos
    )
    result.duplicated = sum(1 for n in accepted.values() if n > 1)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT lower(email) AS email, status FROM messages WHERE campaign_id = $1",
            uuid.UUID(campaign_id),
        )
    finally:
        await conn.close()
    status = {row["email"]: row["status"] for row in rows}
    result.sent = sum(1 for s in status.values() if s == "sent")
    result.unknown = sum(1 for s in status.values() if s == "unknown")
    result.lost = sum(1 for a in accepted if status.get(a) not in {"sent", "unknown"})
    result.sent_but_unknown = sum(1 for a in accepted if status.get(a) == "unknown")


async def _emails(database_url: str, campaign_id: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT lower(email) AS email FROM recipients WHERE campaign_id = $1",
            uuid.UUID(campaign_id),
        )
    finally:
        await conn.close()
    return {row["email"] for row in rows}


def _missing(answered: list[str], found: set[str]) -> int:
    return sum(1 for item in answered if item not in found)
