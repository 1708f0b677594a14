"""Benchmark: one campaign of N recipients (a million by default) end to end.

What is measured, in order, on one system:

(a) import: the wall time from the first `POST /api/v1/campaigns/{id}/recipients/import`
    (`text/csv`; email, name, city, plan, since; unique addresses) until
    `GET /api/v1/campaigns/{id}` reports `recipient_count == N`. The list is sent as
    files of `--import-rows` rows (50,000), in order, `--uploads` of them in flight at a
    time (3), all inside the measured time: as a client with a big list would send it, so
    that the API reads one file while the projector writes those before. (A file is read
    whole before any of it is stored, and each upload's answer waits up to
    `PIGEON_READ_YOUR_WRITES_TIMEOUT_SEC` for its rows to be readable: with two files of
    200,000 in flight the API sat idle through those waits: with `--import-only`, 43 s a
    million, against 29 s this way and 36 s as one file, `--import-rows 1000000
    --uploads 1`; 35–38 s this way in the whole run, after the reference campaign.)
(b) reads at that size: `GET …/stats`, `GET …/status`, the first page and a deep page
    (`offset` N/2) of `GET …/recipients`, and `GET …/messages?status=sent`, each
    `READ_SAMPLES` times; the median of each is logged, `stats` is the result figure
    (measured again after the send, when every counter is non-zero).
(c) send: `POST …/send` until `GET …/status` says `done`, through the real path
    (`bench/send.py`'s: `--senders` sender processes to Postfix's `smtp-sink`), copies
    in Sent off (`append_to_sent: never`): msg/s. Before everything else, on the still
    empty system, a campaign of `--reference` recipients (20,000) is imported and sent
    the same way; its rate is printed beside, with the big campaign's as a ratio of it.
    The same small campaign is sent once more after the big one, beside its million
    rows: if that rate is the first one's, the system is not slower at this size, and a
    big send slower than the reference slowed as it went (watch the rate on stderr).
(d) peak RSS per process: VmHWM of each service process, sampled during the whole run.
    The API, the projector and each sender run as `pigeon serve <name>`, as production
    runs them; the rebuild runs as `pigeon projector rebuild`. The figure is the largest
    of them; each process's value and its RSS at each stage go to stderr, so one can see
    whether it stays flat. This process (the HTTP client, holding the CSV) is logged
    beside them but is not a service and is not in the figure.
(e) rebuild: `pigeon projector rebuild` of the whole stream (import, sending and outcome
    events) beside the live read models, while the live projector runs: events/s = the
    stream's events / seconds from its start to its exit.

How: a throwaway nats-server and PostgreSQL in a temporary folder, everything on
127.0.0.1; every process started here is stopped by its PID at the end, also on error,
Ctrl-C, SIGTERM or `--timeout` (a bound for the whole run). Needs `smtp-sink` (Debian
`postfix`; `--install` as root installs it without configuring a mail system).
Progress goes to stderr; stdout gets `reference: send <n> recipients <r> msg/s (<r2> after
the big send); <N> at <ratio> of that rate`, and its last line is
`scale: import <s> s, send <m> msg/s, peak rss <MB> MB (per process), stats <ms> ms,
rebuild <e> events/s`.

    uv run python bench/scale.py --recipients 1000000 [--senders 2] [--timeout 3600]

`--import-only` runs stage (a) alone on the empty system (no reference, send or rebuild)
and prints `import: <n> recipients in <s> s, peak rss <MB> MB (per process)`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchkit
import httpx
import send as send_bench

from pigeon_common.jetstream import EVENTS_STREAM, connect_nats
from pigeon_testing.stack import Stack, create_admin, migrate, stack_settings

log = logging.getLogger("bench.scale")

API = "/api/v1"
READ_SAMPLES = 15
IMPORT_ROWS = 50_000
UPLOADS_IN_FLIGHT = 3
REFERENCE_RECIPIENTS = 20_000
POLL_INTERVAL_SEC = 0.5
RSS_EVERY_SEC = 1.0
CLIENT = "bench client"  # this process: logged, not in the per-process figure
SERVE = [sys.executable, "-m", "pigeon_cli"]
UNUSED_PORT = 9  # the mailbox's SMTP port with --import-only


@dataclass
class Figures:
    import_seconds: float = 0.0
    send_seconds: float = 0.0
    stats_ms: float = 0.0
    rebuild_events: int = 0
    rebuild_seconds: float = 0.0
    reference_rate: float = 0.0
    reference_after_rate: float = 0.0
    peak_rss: dict[str, float] = field(default_factory=dict)
    stage_rss: list[tuple[str, dict[str, float]]] = field(default_factory=list)


def make_csv(start: int, stop: int) -> bytes:
    """CSV rows `start`..`stop` with the attributes bench/send.py's template reads."""
    first, last = send_bench.FIRST, send_bench.LAST
    cities, plans = send_bench.CITIES, send_bench.PLANS
    lines = ["email,name,city,plan,since"]
    lines += [
        f"user{i}@example.com,{first[i % len(first)]} {last[(i // len(first)) % len(last)]},"
        f"{cities[i % len(cities)]},{plans[i % len(plans)]},{2015 + i % 10}"
        for i in range(start, stop)
    ]
    return ("\n".join(lines) + "\n").encode()


class RssWatch:
    """The VmHWM and current RSS of the watched processes, sampled in the background."""

    def __init__(self, figures: Figures) -> None:
        self._figures = figures
        self.pids: dict[str, int] = {CLIENT: os.getpid()}

    def sample(self) -> dict[str, float]:
        now: dict[str, float] = {}
        for name, pid in self.pids.items():
            peak = send_bench.peak_rss_mb(pid)
            if peak is not None:
                self._figures.peak_rss[name] = max(self._figures.peak_rss.get(name, 0), peak)
            rss = _rss_mb(pid)
            if rss is not None:
                now[name] = rss
        return now

    def stage(self, name: str) -> None:
        now = self.sample()
        self._figures.stage_rss.append((name, now))
        log.info(
            "RSS after %s: %s (peak so far: %s)",
            name,
            ", ".join(f"{k} {v:.0f} MB" for k, v in now.items()),
            ", ".join(f"{k} {v:.0f} MB" for k, v in self._figures.peak_rss.items()),
        )

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(RSS_EVERY_SEC)


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def _median_ms(client: httpx.AsyncClient, path: str) -> float:
    took = []
    for _ in range(READ_SAMPLES):
        started = time.perf_counter()
        answer = await client.get(path, timeout=60)
        took.append(1000 * (time.perf_counter() - started))
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {answer.status_code} {answer.text[:300]}")
    return statistics.median(took)


async def measure_reads(client: httpx.AsyncClient, campaign_id: str, n: int, when: str) -> float:
    """The median latency of each read at this size; returns the stats endpoint's."""
    base = f"{API}/campaigns/{campaign_id}"
    paths = {
        "stats": f"{base}/stats",
        "status": f"{base}/status",
        "recipients page 1": f"{base}/recipients?limit=50",
        "recipients deep page": f"{base}/recipients?limit=50&offset={n // 2}",
        "messages sent": f"{base}/messages?status=sent&limit=50",
    }
    medians = {name: await _median_ms(client, path) for name, path in paths.items()}
    log.info(
        "reads %s (median of %d): %s",
        when,
        READ_SAMPLES,
        ", ".join(f"{k} {v:.1f} ms" for k, v in medians.items()),
    )
    return medians["stats"]


async def import_csv(
    client: httpx.AsyncClient,
    campaign_id: str,
    n: int,
    part_rows: int,
    timeout: float,
    uploads: int,
) -> float:
    """Seconds from the first upload until every recipient is readable."""
    parts = [make_csv(start, min(n, start + part_rows)) for start in range(0, n, part_rows)]
    log.info(
        "CSV ready: %d rows in %d part(s), %.1f MB, %d upload(s) in flight",
        n,
        len(parts),
        sum(map(len, parts)) / 1e6,
        uploads,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    in_flight = asyncio.Semaphore(uploads)

    async def upload(i: int, body: bytes) -> None:
        async with in_flight:
            answer = await client.post(
                f"{API}/campaigns/{campaign_id}/recipients/import",
                content=body,
                headers={"Content-Type": "text/csv"},
                timeout=timeout,
            )
        if answer.status_code not in (200, 202):
            raise RuntimeError(f"import part {i}: HTTP {answer.status_code} {answer.text[:300]}")
        log.info(
            "import part %d of %d answered HTTP %d at %.1f s",
            i,
            len(parts),
            answer.status_code,
            loop.time() - started,
        )

    # Tasks are created in order and the semaphore wakes its waiters first come, first
    # served, so the parts start in order.
    async with asyncio.TaskGroup() as group:
        for i, body in enumerate(parts, 1):
            group.create_task(upload(i, body))
    await _wait_for(
        lambda: _recipient_count(client, campaign_id), n, started + timeout, "recipient_count"
    )
    return loop.time() - started


async def _recipient_count(client: httpx.AsyncClient, campaign_id: str) -> int:
    got = await client.get(f"{API}/campaigns/{campaign_id}")
    got.raise_for_status()
    return int(got.json()["recipient_count"])


async def _wait_for(
    read: Callable[[], Awaitable[int]], target: int, deadline: float, what: str
) -> None:
    loop = asyncio.get_running_loop()
    while (value := await read()) < target:
        if loop.time() > deadline:
            raise TimeoutError(f"{what} {value} of {target}")
        await asyncio.sleep(POLL_INTERVAL_SEC)


async def create_campaign(client: httpx.AsyncClient, smtp_port: int) -> str:
    mailbox = {
        "name": "Scale mailbox",
        "from_name": "Example News",
        "from_address": "news@example.com",
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "plain",
            "username": "",
            "password": "",
        },
        "imap": {
            "host": "127.0.0.1",
            "port": 9,
            "security": "plain",
            "username": "x",
            "password": "x",
        },
        "sent_folder": "",
        "append_to_sent": "never",
    }
    created = await client.post(f"{API}/mailboxes", json=mailbox)
    if created.status_code not in (201, 202):
        raise RuntimeError(f"creating the mailbox: HTTP {created.status_code} {created.text}")
    campaign = await client.post(
        f"{API}/campaigns",
        json={
            "name": "The scale letter",
            "subject": "News for {{ recipient.name }}",
            "template_markdown": send_bench.TEMPLATE,
            "mailbox_id": created.json()["id"],
        },
    )
    if campaign.status_code not in (201, 202):
        raise RuntimeError(f"creating the campaign: HTTP {campaign.status_code} {campaign.text}")
    return str(campaign.json()["id"])


def service_env(stack: Stack, args: argparse.Namespace, root: Path) -> dict[str, str]:
    """The environment of every service process: the servers, the secret, the ports."""
    env = send_bench.sender_env(stack, _send_options(args, args.recipients), root)
    env.update(
        {
            "PIGEON_API_HOST": "127.0.0.1",
            "PIGEON_API_PORT": str(stack.settings.api_port),
            "PIGEON_PROJECTOR_PORT": str(stack.settings.projector_port),
            "PIGEON_READ_YOUR_WRITES_TIMEOUT_SEC": str(stack.settings.read_your_writes_timeout_sec),
        }
    )
    return env


async def start_services(
    stack: Stack, env: dict[str, str], procs: benchkit.Processes, root: Path, watch: RssWatch
) -> None:
    """The API and the projector as `pigeon serve` processes, and a client of the API."""
    assert stack.settings.database_url is not None
    await migrate(stack.settings.database_url)
    stack.token = await create_admin(stack.settings)
    for name in ("projector", "api"):
        proc = procs.start(name, [*SERVE, "serve", name], root / f"{name}.log", env=env)
        watch.pids[name] = proc.pid
    stack.client = httpx.AsyncClient(
        base_url=stack.base_url, headers={"Authorization": f"Bearer {stack.token}"}, timeout=60
    )
    await stack.wait_ready("/readyz", timeout=60)


async def measure_rebuild(
    stack: Stack,
    env: dict[str, str],
    procs: benchkit.Processes,
    root: Path,
    watch: RssWatch,
    figures: Figures,
    timeout: float,
) -> None:
    settings = stack.settings
    assert settings.nats_url is not None
    nc = await connect_nats(settings.nats_url, name="bench-scale-rebuild", attempts=3)
    try:
        events = (await nc.jetstream().stream_info(EVENTS_STREAM)).state.last_seq
    finally:
        await nc.close()
    log_path = root / "rebuild.log"
    started = time.perf_counter()
    proc = procs.start("rebuild", [*SERVE, "projector", "rebuild"], log_path, env=env)
    watch.pids["rebuild"] = proc.pid
    code = await send_bench.wait_process(proc, timeout)
    figures.rebuild_seconds = time.perf_counter() - started
    del watch.pids["rebuild"]  # its peak: the watcher's last sample, a second before the end
    if code != 0:
        raise RuntimeError(f"rebuild exited with {code}:\n" + benchkit.tail(log_path))
    figures.rebuild_events = int(events)
    log.info("rebuild: %d events in %.1f s", figures.rebuild_events, figures.rebuild_seconds)


def _send_options(args: argparse.Namespace, recipients: int) -> send_bench.Options:
    return send_bench.Options(
        recipients=recipients,
        append=False,
        senders=args.senders,
        concurrency=args.concurrency,
        batch_size=None,
        timeout=args.timeout,
        py_spy=None,
        py_spy_seconds=0,
        sender_command=[sys.executable, "-m", "pigeon_cli", "serve", "sender"],
    )


async def send_campaign(
    stack: Stack,
    args: argparse.Namespace,
    ctx: tuple[benchkit.Processes, Path, list[Any]],
    campaign_id: str,
    recipients: int,
) -> float:
    """Seconds from POST /send until the campaign is done."""
    procs, root, senders = ctx
    result = send_bench.Result()
    opts = _send_options(args, recipients)
    await send_bench.measure_send(stack, opts, procs, root, campaign_id, senders, result)
    return float(result.send_seconds)


async def send_reference(
    stack: Stack,
    args: argparse.Namespace,
    ctx: tuple[benchkit.Processes, Path, list[Any]],
    client: httpx.AsyncClient,
    sink_port: int,
) -> float:
    """msg/s of a campaign of `--reference` recipients, imported and sent as the big one."""
    campaign_id = await create_campaign(client, sink_port)
    await import_csv(
        client, campaign_id, args.reference, args.import_rows, args.timeout, args.uploads
    )
    rate = args.reference / await send_campaign(stack, args, ctx, campaign_id, args.reference)
    log.info("reference: %d sent at %.0f msg/s", args.reference, rate)
    return rate


async def run(
    args: argparse.Namespace, root: Path, procs: benchkit.Processes, urls: Any
) -> Figures:
    database_url, nats_url = urls
    figures = Figures()
    watch = RssWatch(figures)
    stack = Stack(
        stack_settings(
            database_url, nats_url, root / "data", public_base_url=send_bench.PUBLIC_BASE_URL
        )
    )
    env = service_env(stack, args, root)
    watcher = asyncio.create_task(watch.run())
    try:
        await start_services(stack, env, procs, root, watch)
        client = stack.client
        assert client is not None
        if args.import_only:
            # Nothing is sent: the mailbox's SMTP port is never connected to.
            campaign_id = await create_campaign(client, UNUSED_PORT)
            figures.import_seconds = await import_csv(
                client, campaign_id, args.recipients, args.import_rows, args.timeout, args.uploads
            )
            watch.stage("import")
            return figures
        sink, sink_port = send_bench.start_sink(procs, root, "smtp-sink")
        sender = [*SERVE, "serve", "sender"]
        senders = [
            procs.start(f"sender-{i}", sender, root / f"sender-{i}.log", env=env)
            for i in range(args.senders)
        ]
        for i, proc in enumerate(senders):
            watch.pids[f"sender-{i}"] = proc.pid
        await send_bench.wait_workers(nats_url, args.senders * args.concurrency, senders)
        ctx = (procs, root, senders)
        watch.stage("start")
        if args.reference:
            # The rate to compare with: a small campaign on the same, still empty system.
            figures.reference_rate = await send_reference(stack, args, ctx, client, sink_port)
            watch.stage("reference send")

        campaign_id = await create_campaign(client, sink_port)
        figures.import_seconds = await import_csv(
            client, campaign_id, args.recipients, args.import_rows, args.timeout, args.uploads
        )
        log.info(
            "import: %d recipients readable after %.1f s", args.recipients, figures.import_seconds
        )
        watch.stage("import")
        await measure_reads(client, campaign_id, args.recipients, "before the send")
        figures.send_seconds = await send_campaign(stack, args, ctx, campaign_id, args.recipients)
        watch.stage("send")
        figures.stats_ms = await measure_reads(
            client, campaign_id, args.recipients, "after the send"
        )
        if args.reference:
            # The same small campaign again, now beside a million: tells a system slower
            # at this size from a long send that slowed as it went.
            figures.reference_after_rate = await send_reference(stack, args, ctx, client, sink_port)
            watch.stage("reference send after")
        for proc in senders:
            procs.stop(proc)
        procs.stop(sink)
        await measure_rebuild(stack, env, procs, root, watch, figures, args.timeout)
        watch.stage("rebuild")
        return figures
    finally:
        watcher.cancel()
        await stack.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument("--concurrency", type=int, default=8, help="workers per sender")
    parser.add_argument("--import-rows", type=int, default=IMPORT_ROWS, help="rows per CSV upload")
    parser.add_argument(
        "--uploads", type=int, default=UPLOADS_IN_FLIGHT, help="CSV uploads in flight at a time"
    )
    parser.add_argument(
        "--reference",
        type=int,
        default=REFERENCE_RECIPIENTS,
        help="recipients of the campaign sent first, whose rate the big one is compared "
        "with (0: none)",
    )
    parser.add_argument(
        "--import-only",
        action="store_true",
        help="stage (a) alone, on an empty system: prints `import: <n> recipients in <s> s`",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="bound of the whole run, in seconds"
    )
    parser.add_argument(
        "--install", action="store_true", help="install postfix's tools if missing (root only)"
    )
    args = parser.parse_args(argv)
    if min(args.recipients, args.senders, args.import_rows, args.uploads) < 1 or args.reference < 0:
        parser.error("--recipients, --senders, --import-rows and --uploads must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchkit.configure("httpx")
    code = send_bench.ensure_postfix(args.install)
    if code:
        return code
    procs = benchkit.Processes()
    with benchkit.embedded_servers("scale") as (root, nats_server, postgres):
        try:
            figures = asyncio.run(
                asyncio.wait_for(
                    run(args, root, procs, (postgres.url, nats_server.url)), timeout=args.timeout
                )
            )
        finally:
            procs.stop_all()
    for name, peak in figures.peak_rss.items():
        log.info("peak RSS %s: %.0f MB", name, peak)
    services = [peak for name, peak in figures.peak_rss.items() if name != CLIENT]
    if args.import_only:
        print(
            f"import: {args.recipients} recipients in {figures.import_seconds:.1f} s, "
            f"peak rss {max(services):.0f} MB (per process)",
            flush=True,
        )
        return 0
    rate = args.recipients / figures.send_seconds
    if figures.reference_rate:
        print(
            f"reference: send {args.reference} recipients {figures.reference_rate:.0f} msg/s "
            f"({figures.reference_after_rate:.0f} after the big send); "
            f"{args.recipients} at {rate / figures.reference_rate:.2f} of that rate",
            flush=True,
        )
    print(
        f"scale: import {figures.import_seconds:.1f} s, "
        f"send {rate:.0f} msg/s, "
        f"peak rss {max(services):.0f} MB (per process), "
        f"stats {figures.stats_ms:.1f} ms, "
        f"rebuild {figures.rebuild_events / figures.rebuild_seconds:.0f} events/s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
