"""Benchmark: projector throughput against a raw JetStream pull-consume of the same stream.

What is measured, on one EVENTS stream of N events:

(a) raw consume: an ephemeral pull consumer from sequence 1 (explicit acks), `fetch(256)`
    and `ack()` of every message, no other work, until the last sequence was received and
    the acks flushed: messages per second. This is the ceiling one Python process with
    nats-py reaches here.
(b) projector: `pigeon_projector.projector.Projector` (the production class, batch size from
    the settings unless `--batch-size`) applies the whole stream from sequence 1 into a
    freshly migrated database, timed from its start until its checkpoint (reported through
    `after_commit`) reaches the stream's last sequence: events per second.

The ratio (b)/(a) says how much per-event overhead the projector adds on top of reading
the stream. Rounds alternate raw, projector, raw, projector, ... (`--rounds`, default 2);
the best figure of each kind is reported, so a one-off hiccup of this shared 2-core
machine does not decide the result. Each projector round gets its own new database.
Beside the wall-clock rates, stderr gets each side's events per CPU second of this
process (and of PostgreSQL for the projector): when other work loads the machine, the
wall-clock rates follow the load, the CPU ones much less.

The events are realistic ones from the catalog, mostly small single events, published
before any measurement with `publish_async` in batches (with `Nats-Msg-Id`, as the
services publish): a few MailboxCreated and CampaignCreated first, then a seeded random
mix of 75 % RecipientsAdded with one recipient, 10 % CampaignUpdated, 10 % MailboxUpdated
and 5 % RecipientDeleted.

Both sides run with the cycle collector tuned as the services tune it at start
(`pigeon_common.collector`).

How: a throwaway nats-server and PostgreSQL (fsync on unless `--no-fsync`) are started on
127.0.0.1 in a temporary folder and stopped by their process at the end, also on error,
Ctrl-C, SIGTERM or `--timeout`. Progress goes to stderr; the last line on stdout is
`project: <e> events/s, raw consume <c> msgs/s, ratio <r>`.

    uv run python bench/project.py --events 50000 [--no-fsync] [--uvloop] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import benchkit
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError

from pigeon_common import collector, db
from pigeon_common import events as ev
from pigeon_common.jetstream import (
    EVENTS_STREAM,
    Header,
    connect_nats,
    encode,
    provision,
    subject_for,
)
from pigeon_common.validation import recipient_id
from pigeon_projector.projector import Projector
from pigeon_projector.settings import ProjectorSettings
from pigeon_testing.stack import migrate

log = logging.getLogger("bench.project")

SEED = 20_261_123
MAILBOXES = 3
CAMPAIGNS = 20
PUBLISH_BATCH = 2_000
RAW_FETCH = 256
FETCH_TIMEOUT_SEC = 2.0
CITIES = ("Berlin", "Paris", "Lisbon", "Oslo", "Vienna", "Madrid", "Dublin", "Prague")
PLANS = ("free", "pro", "team", "enterprise")
DEFAULT_BATCH_SIZE: int = ProjectorSettings.model_fields["projector_batch_size"].default


@dataclass
class Results:
    raw: list[float]
    projector: list[float]
    # Events per CPU second of this process (the Python side, which sets the pace): on a
    # machine shared with other work the wall-clock rates vary with the load, these less.
    raw_cpu: list[float]
    projector_cpu: list[float]
    postgres_cpu: list[float]


def _mailbox_config(i: int, rate: int) -> ev.MailboxConfig:
    return ev.MailboxConfig(
        name=f"Mailbox {i}",
        from_name=f"Sender {i}",
        from_address=f"sender{i}@example.com",
        smtp=ev.ServerEndpoint(
            host="smtp.example.com", port=587, security="starttls", username=f"sender{i}"
        ),
        imap=ev.ServerEndpoint(
            host="imap.example.com", port=993, security="tls", username=f"sender{i}"
        ),
        sent_folder="Sent",
        bounce_folder="Bounces",
        rate_per_second=rate,
    )


def make_events(count: int) -> list[ev.Envelope]:
    """`count` envelopes: mailboxes and campaigns first, then the seeded random mix."""
    rng = random.Random(SEED)
    actor = str(uuid.uuid4())
    clock = datetime(2026, 11, 23, tzinfo=UTC)
    mailbox_ids = [uuid.uuid4() for _ in range(MAILBOXES)]
    campaign_ids = [uuid.uuid4() for _ in range(CAMPAIGNS)]
    added: list[tuple[uuid.UUID, uuid.UUID]] = []
    envelopes: list[ev.Envelope] = []
    event: ev.Event

    def wrap(event: ev.Event, aggregate: uuid.UUID) -> None:
        at = clock + timedelta(milliseconds=len(envelopes))
        envelopes.append(ev.envelope_for(event, str(aggregate), actor=actor, occurred_at=at))

    for i, mailbox_id in enumerate(mailbox_ids):
        if len(envelopes) < count:
            wrap(ev.MailboxCreated(mailbox_id=mailbox_id, config=_mailbox_config(i, 5)), mailbox_id)
    for i, campaign_id in enumerate(campaign_ids):
        if len(envelopes) < count:
            event = ev.CampaignCreated(
                campaign_id=campaign_id,
                name=f"Campaign {i}",
                subject="Hello {{ recipient.name }}",
                template_markdown="Hi {{ recipient.name }},\n\nnews from **Pigeon**.\n",
                mailbox_id=mailbox_ids[i % MAILBOXES],
            )
            wrap(event, campaign_id)
    while len(envelopes) < count:
        n = len(envelopes)
        pick = rng.random()
        if pick < 0.75 or (pick >= 0.95 and not added):
            campaign_id = rng.choice(campaign_ids)
            email = f"user{n}@example.com"
            rid = recipient_id(campaign_id, email)
            recipient = ev.RecipientData(
                recipient_id=rid,
                email=email,
                name=f"User {n}",
                attributes={"city": rng.choice(CITIES), "plan": rng.choice(PLANS)},
            )
            event = ev.RecipientsAdded(
                campaign_id=campaign_id, recipients=[recipient], source="api"
            )
            added.append((campaign_id, rid))
            wrap(event, campaign_id)
        elif pick < 0.85:
            i = rng.randrange(CAMPAIGNS)
            event = ev.CampaignUpdated(
                campaign_id=campaign_ids[i],
                name=f"Campaign {i} v{n}",
                subject="Hello {{ recipient.name }}",
                template_markdown=f"Hi {{{{ recipient.name }}}},\n\nedit {n}.\n",
                mailbox_id=mailbox_ids[i % MAILBOXES],
                changed=["name", "template_markdown"],
            )
            wrap(event, campaign_ids[i])
        elif pick < 0.95:
            i = rng.randrange(MAILBOXES)
            config = _mailbox_config(i, rng.randint(1, 20))
            event = ev.MailboxUpdated(mailbox_id=mailbox_ids[i], config=config)
            wrap(event, mailbox_ids[i])
        else:
            campaign_id, rid = added.pop(rng.randrange(len(added)))
            wrap(ev.RecipientDeleted(campaign_id=campaign_id, recipient_id=rid), campaign_id)
    return envelopes


async def publish_all(nc: NatsClient, envelopes: list[ev.Envelope]) -> int:
    """Publish with publish_async in batches; returns the stream's last sequence."""
    js = nc.jetstream(publish_async_max_pending=PUBLISH_BATCH * 2)
    await provision(js)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for start in range(0, len(envelopes), PUBLISH_BATCH):
        futures = [
            await js.publish_async(
                subject_for(envelope),
                encode(envelope),
                stream=EVENTS_STREAM,
                headers={Header.MSG_ID: str(envelope.event_id)},
            )
            for envelope in envelopes[start : start + PUBLISH_BATCH]
        ]
        await asyncio.gather(*futures)
        done = start + len(futures)
        if done % (PUBLISH_BATCH * 10) == 0 or done == len(envelopes):
            log.info("published %d of %d", done, len(envelopes))
    await js.publish_async_completed()
    elapsed = loop.time() - started
    info = await js.stream_info(EVENTS_STREAM)
    log.info(
        "published %d events in %.2f s (%.0f/s); stream holds %d msgs, %.1f MB",
        len(envelopes),
        elapsed,
        len(envelopes) / elapsed,
        info.state.messages,
        info.state.bytes / 1e6,
    )
    return int(info.state.last_seq)


async def raw_consume(nats_url: str, last_seq: int) -> float:
    """fetch(256) + ack each message from sequence 1 to `last_seq`; returns msgs/s."""
    nc = await connect_nats(nats_url, name="bench-raw", attempts=3)
    try:
        js = nc.jetstream()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            max_ack_pending=RAW_FETCH * 4,
            inactive_threshold=10.0,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        sub = await js.pull_subscribe("pigeon.events.>", stream=EVENTS_STREAM, config=config)
        received = 0
        seen = 0
        while seen < last_seq:
            try:
                msgs = await sub.fetch(RAW_FETCH, timeout=FETCH_TIMEOUT_SEC)
            except (TimeoutError, FetchTimeoutError):
                raise TimeoutError(f"raw consume stalled at seq {seen} of {last_seq}") from None
            for msg in msgs:
                await msg.ack()
            received += len(msgs)
            seen = msgs[-1].metadata.sequence.stream
        await nc.flush()
        elapsed = loop.time() - started
        await sub.unsubscribe()
    finally:
        await nc.close()
    rate = received / elapsed
    log.info("raw consume: %d msgs in %.2f s = %.0f msgs/s", received, elapsed, rate)
    return rate


async def project(nats_url: str, database_url: str, last_seq: int, batch_size: int) -> float:
    """Run the Projector from sequence 1 into a migrated database; returns events/s."""
    pool = await db.open_pool(database_url, max_size=2, attempts=3)
    nc = await connect_nats(nats_url, name="bench-projector", attempts=3)
    try:
        js = nc.jetstream()
        reached = asyncio.Event()
        loop = asyncio.get_running_loop()
        finished_at = 0.0

        async def after_commit(checkpoint: int) -> None:
            nonlocal finished_at
            if checkpoint >= last_seq and not reached.is_set():
                finished_at = loop.time()
                reached.set()

        stop = asyncio.Event()
        projector = Projector(pool, nc, js, batch_size=batch_size, after_commit=after_commit)
        started = loop.time()
        task = asyncio.create_task(projector.run(stop))
        waiter = asyncio.create_task(reached.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()  # raises what stopped the projector
                raise RuntimeError("the projector stopped before reaching the last sequence")
        finally:
            waiter.cancel()
            stop.set()
            await asyncio.wait_for(task, timeout=15)
        elapsed = finished_at - started
        async with pool.acquire() as conn:
            counts = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM recipients) AS recipients,"
                " (SELECT count(*) FROM campaigns) AS campaigns,"
                " (SELECT count(*) FROM mailboxes) AS mailboxes,"
                " (SELECT count(*) FROM projection_skipped) AS skipped"
            )
        if counts["skipped"]:
            raise RuntimeError(f"the projector skipped {counts['skipped']} events")
    finally:
        await nc.close()
        await pool.close()
    rate = last_seq / elapsed
    log.info(
        "projector: %d events in %.2f s = %.0f events/s (rows: %d recipients, %d campaigns,"
        " %d mailboxes)",
        last_seq,
        elapsed,
        rate,
        counts["recipients"],
        counts["campaigns"],
        counts["mailboxes"],
    )
    return rate


async def run_bench(
    nats_url: str,
    postgres_pid: int,
    new_database: Callable[[int], str],
    events: int,
    rounds: int,
    batch_size: int,
) -> Results:
    envelopes = make_events(events)
    log.info("built %d events", len(envelopes))
    nc = await connect_nats(nats_url, name="bench-publisher", attempts=3)
    try:
        last_seq = await publish_all(nc, envelopes)
    finally:
        await nc.close()
    del envelopes
    results = Results(raw=[], projector=[], raw_cpu=[], projector_cpu=[], postgres_cpu=[])
    for round_no in range(1, rounds + 1):
        log.info("round %d of %d: raw consume", round_no, rounds)
        cpu = time.process_time()
        results.raw.append(await raw_consume(nats_url, last_seq))
        results.raw_cpu.append(last_seq / (time.process_time() - cpu))
        database_url = await asyncio.to_thread(new_database, round_no)
        await migrate(database_url)
        log.info("round %d of %d: projector", round_no, rounds)
        cpu, pg_cpu = time.process_time(), benchkit.tree_cpu_seconds(postgres_pid)
        results.projector.append(await project(nats_url, database_url, last_seq, batch_size))
        results.projector_cpu.append(last_seq / (time.process_time() - cpu))
        results.postgres_cpu.append(last_seq / (benchkit.tree_cpu_seconds(postgres_pid) - pg_cpu))
        log.info(
            "round %d: per CPU second: raw %.0f msgs, projector %.0f events (PostgreSQL %.0f)",
            round_no,
            results.raw_cpu[-1],
            results.projector_cpu[-1],
            results.postgres_cpu[-1],
        )
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events in the stream")
    parser.add_argument(
        "--rounds", type=int, default=2, help="raw/projector rounds; the best of each counts"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"projector batch size (default: the setting's default, {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="run PostgreSQL with fsync, synchronous_commit and full_page_writes off",
    )
    parser.add_argument("--uvloop", action="store_true", help="run the event loop on uvloop")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="give up after this many seconds"
    )
    args = parser.parse_args(argv)
    if args.events < MAILBOXES + CAMPAIGNS + 1:
        parser.error(f"--events must be more than {MAILBOXES + CAMPAIGNS}")
    if args.rounds < 1 or args.batch_size < 1:
        parser.error("--rounds and --batch-size must be at least 1")
    return args


def _run(coro: Coroutine[Any, Any, Results], use_uvloop: bool) -> Results:
    if use_uvloop:
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchkit.configure()
    # As the projector service runs (its start-up path tunes the collector); the raw
    # consume, in this same process, runs with the same collector.
    collector.tune_for_service()
    with benchkit.embedded_servers("project", fsync=not args.no_fsync) as (_, nats, postgres):

        def new_database(round_no: int) -> str:
            return postgres.create_database(f"bench_project_{round_no}")

        coro = asyncio.wait_for(
            run_bench(
                nats.url, postgres.pid, new_database, args.events, args.rounds, args.batch_size
            ),
            timeout=args.timeout,
        )
        results = _run(coro, args.uvloop)
    best_projector = max(results.projector)
    best_raw = max(results.raw)
    log.info(
        "raw msgs/s per round: %s; projector events/s per round: %s",
        ", ".join(f"{r:.0f}" for r in results.raw),
        ", ".join(f"{r:.0f}" for r in results.projector),
    )
    log.info(
        "per CPU second of this process (best): raw %.0f msgs, projector %.0f events,"
        " ratio %.2f; PostgreSQL %.0f events per its CPU second",
        max(results.raw_cpu),
        max(results.projector_cpu),
        max(results.projector_cpu) / max(results.raw_cpu),
        max(results.postgres_cpu),
    )
    print(
        f"project: {best_projector:.0f} events/s, raw consume {best_raw:.0f} msgs/s, "
        f"ratio {best_projector / best_raw:.2f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
