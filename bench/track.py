"""Benchmark: the tracker's open pixel and click redirect under wrk, beside nginx serving
the same 43-byte GIF, on the same machine in the same run.

What is measured: `wrk -t<threads> -c<connections> -d<seconds>s` (Debian's wrk) against
(a) the pixel URL of one message, (b) one of its click URLs, (c) nginx serving the
tracker's own 43-byte GIF with the same no-cache headers, measured right after (a) so
both figures of the ratio see the same machine. req/s as wrk reports them; ratio =
pixel / nginx. Each run is preceded by a 2 s warm-up (not counted).

The tracker runs as production runs it: `python -m pigeon_cli serve tracker` with
PIGEON_TRACKER_WORKERS worker processes (`--workers`, default 2) sharing the port, with
PIGEON_TRACKER_EVENTS_PER_MINUTE=0 so that every fetch of the one URL is recorded (with
the default, a loop on one URL is a flood answered without recording). Every
answered pixel or click is a `message.opened` / `link.clicked` event stored in the EVENTS
stream before the answer is sent (JetStream file storage). After each run the stream is
counted: every 2xx/3xx answer wrk got must be there (none lost). The stream may hold a
few more (at most one per connection): requests in flight when wrk stopped were stored,
but wrk no longer read their answers; the check allows exactly that, nothing else.

Setup, before any clock: a throwaway nats-server and PostgreSQL (`pigeon_embedded`, in a
temporary folder, 127.0.0.1 only), migrated; a campaign registered by publishing its
events (mailbox, campaign, one recipient, sending started with two links) and running
the projector in this process until it has applied them, so the tracker reads the
campaign's links from the read model as it does in production; the projector is then
stopped so it does not compete for the CPU during the measurement (the opens and clicks
stay in the stream, the projector is not what is measured).

nginx (Debian's nginx-light) runs from a temporary config (`daemon off`, two worker
processes like the tracker) with Debian's stock http settings (sendfile, tcp_nopush, an
access log, default keep-alive limits) on a free loopback port; `--nginx-lean` turns the
access log off and lifts the requests-per-connection limit.
wrk, nats-server, nginx and the tracker share the machine's cores, as the issue asks.

Every process started here (servers, tracker, nginx, wrk) is stopped by its PID at the
end, also on error, Ctrl-C or SIGTERM; each step is bounded in time. Nothing is installed
unless `--install` is given (as root: `apt-get install -y wrk nginx-light`). Progress and
CPU figures go to stderr; the last line on stdout is
`track: pixel <p> req/s, click <c> req/s, nginx <n> req/s, ratio <r>`.

    ./run bench track --seconds 10 [--install] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchkit
import httpx

from pigeon_common import db
from pigeon_common import events as ev
from pigeon_common.jetstream import EVENTS_STREAM, connect_nats, provision, publish_event
from pigeon_common.read_models import read_checkpoint
from pigeon_common.render import TrackingSigner, tracking_urls
from pigeon_embedded.nats import NatsServer
from pigeon_embedded.ports import LOOPBACK, free_port
from pigeon_embedded.postgres import PostgresServer
from pigeon_testing.stack import migrate, stack_settings
from pigeon_tracker.responses import PIXEL, PIXEL_START

log = logging.getLogger("bench.track")

NGINX = Path("/usr/sbin/nginx")
INSTALL = ["apt-get", "install", "-y", "wrk", "nginx-light"]
LINKS = ["https://example.com/news?id=1", "https://example.com/blog"]
OPENED = "pigeon.events.message.opened"
CLICKED = "pigeon.events.link.clicked"
WARMUP_SEC = 2
READY_TIMEOUT_SEC = 60.0
WRK_TIMEOUT = "10s"  # a request counts as failed only after this long


# --- setup --------------------------------------------------------------------------------------


@dataclass
class Target:
    pixel: str
    click: str
    click_destination: str


async def register_campaign(settings: Any) -> Target:
    """Publish a campaign's events, project them, and return its tracking paths."""
    from pigeon_projector.service import ProjectorService

    assert settings.nats_url is not None and settings.database_url is not None
    mailbox_id, campaign_id = uuid.uuid4(), uuid.uuid4()
    recipient = ev.RecipientData(recipient_id=uuid.uuid4(), email="reader@example.org")
    endpoint = ev.ServerEndpoint(host="127.0.0.1", port=9, security="plain", username="")
    config = ev.MailboxConfig(
        name="Bench",
        from_name="Bench",
        from_address="bench@example.com",
        smtp=endpoint,
        imap=endpoint,
    )
    facts: list[tuple[ev.Event, str]] = [
        (ev.MailboxCreated(mailbox_id=mailbox_id, config=config), str(mailbox_id)),
        (
            ev.CampaignCreated(
                campaign_id=campaign_id,
                name="Bench",
                subject="Hello",
                template_markdown="[news](https://example.com/news?id=1)",
                mailbox_id=mailbox_id,
            ),
            str(campaign_id),
        ),
        (ev.RecipientsAdded(campaign_id=campaign_id, recipients=[recipient]), str(campaign_id)),
        (
            ev.CampaignSendingStarted(
                campaign_id=campaign_id,
                run_id=uuid.uuid4(),
                recipients=1,
                chunks=1,
                options=ev.SendOptions(batch_size=100),
                links=LINKS,
            ),
            str(campaign_id),
        ),
    ]
    nc = await connect_nats(settings.nats_url, name="bench-track", attempts=3)
    try:
        js = nc.jetstream()
        await provision(js)
        last = 0
        for event, aggregate in facts:
            last = await publish_event(js, ev.envelope_for(event, aggregate))
    finally:
        await nc.close()
    stop = asyncio.Event()
    projector = asyncio.create_task(ProjectorService(settings).run(stop))
    conn = await db.connect(settings.database_url)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SEC
        while await read_checkpoint(conn) < last:
            if projector.done() or time.monotonic() > deadline:
                raise RuntimeError(f"projector did not reach event {last}")
            await asyncio.sleep(0.05)
        count = await conn.fetchval(
            "SELECT count(*) FROM campaign_links WHERE campaign_id = $1", campaign_id
        )
        assert count == len(LINKS), count
    finally:
        await conn.close()
        stop.set()
        await asyncio.wait_for(projector, timeout=30)
    log.info("campaign %s registered (projected up to event %d)", campaign_id, last)
    urls = tracking_urls(
        "http://x", TrackingSigner(settings.keys()), campaign_id, recipient.recipient_id
    )
    path = len("http://x")
    return Target(urls.open_url[path:], urls.click_url(0)[path:], LINKS[0])


def tracker_env(settings: Any, port: int, workers: int, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
    env.update(
        {
            "PIGEON_DATABASE_URL": settings.database_url,
            "PIGEON_NATS_URL": settings.nats_url,
            "PIGEON_SECRET_KEY": settings.secret_key.get_secret_value(),
            "PIGEON_TRACKER_HOST": LOOPBACK,
            "PIGEON_TRACKER_PORT": str(port),
            "PIGEON_TRACKER_WORKERS": str(workers),
            "PIGEON_DATA_DIR": str(root / "tracker-data"),
            "PIGEON_LOG_LEVEL": "WARNING",
            # wrk fetches one pixel in a loop: a flood, which the tracker would answer
            # without recording beyond 10 a minute. The bench measures the recording path.
            "PIGEON_TRACKER_EVENTS_PER_MINUTE": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


async def wait_tracker(
    base: str, target: Target, nats: NatsServer, workers: int, proc: subprocess.Popen[bytes]
) -> None:
    """Until every worker is connected to NATS and the pixel answers 200."""
    deadline = time.monotonic() + READY_TIMEOUT_SEC
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tracker exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                connz = (await client.get(f"http://{LOOPBACK}:{nats.monitor_port}/connz")).json()
                named = [
                    c for c in connz.get("connections") or [] if c.get("name") == "pigeon-tracker"
                ]
                if len(named) >= workers:
                    pixel = await client.get(base + target.pixel)
                    click = await client.get(base + target.click)
                    if pixel.status_code == 200 and click.status_code == 302:
                        assert pixel.content == PIXEL
                        assert click.headers["location"] == target.click_destination
                        return
            if time.monotonic() > deadline:
                raise TimeoutError("tracker not ready")
            await asyncio.sleep(0.2)


def nginx_config(root: Path, port: int, *, lean: bool) -> Path:
    """A private nginx serving the tracker's GIF with the tracker's headers: Debian's stock
    http settings (sendfile, tcp_nopush, an access log, default keep-alive limits), or with
    `lean` the access log off and no limit on requests per connection."""
    www = root / "www"
    www.mkdir()
    (www / "p.png").write_bytes(PIXEL)
    for path in (root, www):  # nginx's workers run as nobody
        path.chmod(0o755)
    (www / "p.png").chmod(0o644)
    headers = {
        k.decode(): v.decode()
        for k, v in PIXEL_START["headers"]
        if k not in (b"content-type", b"content-length")
    }
    add = "\n".join(f'            add_header {k} "{v}" always;' for k, v in headers.items())
    logging_and_limits = (
        "access_log off;\n    keepalive_requests 1000000;"
        if lean
        else f"access_log {root}/access.log;"
    )
    conf = root / "nginx.conf"
    conf.write_text(
        f"""daemon off;
worker_processes 2;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 768; }}
http {{
    sendfile on;
    tcp_nopush on;
    {logging_and_limits}
    client_body_temp_path {root}/client_temp;
    proxy_temp_path {root}/proxy_temp;
    fastcgi_temp_path {root}/fastcgi_temp;
    uwsgi_temp_path {root}/uwsgi_temp;
    scgi_temp_path {root}/scgi_temp;
    server {{
        listen {LOOPBACK}:{port};
        root {www};
        location = /p.png {{
            default_type image/gif;
            etag off;
            if_modified_since off;
{add}
        }}
    }}
}}
"""
    )
    return conf


# --- wrk ----------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int = 0
    non_2xx_3xx: int = 0
    errors: int = 0
    rate: float = 0.0
    output: str = ""

    @property
    def answered(self) -> int:
        return self.requests - self.non_2xx_3xx


def parse_wrk(output: str) -> WrkResult:
    result = WrkResult(output=output)
    if m := re.search(r"(\d+) requests in", output):
        result.requests = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        result.non_2xx_3xx = int(m.group(1))
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        result.errors = sum(int(g) for g in m.groups())
    if m := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result.rate = float(m.group(1))
    return result


@dataclass
class Options:
    seconds: int
    threads: int
    connections: int
    workers: int
    nginx_lean: bool
    cpu: dict[str, int] = field(default_factory=dict)  # name -> pid, for CPU figures


async def run_wrk(
    procs: benchkit.Processes, opts: Options, url: str, root: Path, name: str, seconds: int
) -> WrkResult:
    argv = [
        "wrk",
        f"-t{opts.threads}",
        f"-c{opts.connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        url,
    ]
    out = root / f"wrk-{name}.log"
    out.write_bytes(b"")
    proc = procs.start(f"wrk {name}", argv, out)
    cpu_before = {k: benchkit.tree_cpu_seconds(pid) for k, pid in opts.cpu.items()}
    deadline = time.monotonic() + seconds + 60
    while proc.poll() is None:
        if time.monotonic() > deadline:
            procs.stop(proc)
            raise TimeoutError(f"wrk {name} did not finish")
        await asyncio.sleep(0.05)
    cpu = {k: benchkit.tree_cpu_seconds(pid) - cpu_before[k] for k, pid in opts.cpu.items()}
    procs.stop(proc)
    result = parse_wrk(out.read_text())
    if proc.returncode != 0 or not result.requests:
        raise RuntimeError(f"wrk {name} failed ({proc.returncode}): {result.output}")
    if seconds >= 3:
        figures = ", ".join(f"{k} {v / seconds:.2f}" for k, v in cpu.items())
        log.info(
            "%s: %.0f req/s, %d requests, %d non-2xx/3xx, %d socket errors; cores busy: %s",
            name,
            result.rate,
            result.requests,
            result.non_2xx_3xx,
            result.errors,
            figures,
        )
    return result


class StreamCount:
    def __init__(self, js: Any) -> None:
        self._js = js

    async def __call__(self, subject: str) -> int:
        info = await self._js.stream_info(EVENTS_STREAM, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))


async def measure_tracker(
    procs: benchkit.Processes,
    opts: Options,
    base: str,
    path: str,
    subject: str,
    root: Path,
    js: Any,
) -> float:
    """wrk against one tracker URL; checks every answered request's event is stored."""
    count = StreamCount(js)
    name = subject.rsplit(".", 1)[1]
    await run_wrk(procs, opts, base + path, root, f"{name}-warmup", WARMUP_SEC)
    await asyncio.sleep(0.5)  # let the warm-up's last acks land
    before = await count(subject)
    result = await run_wrk(procs, opts, base + path, root, name, opts.seconds)
    await asyncio.sleep(0.5)
    stored = await count(subject) - before
    extra = stored - result.answered
    log.info(
        "%s: wrk got %d 2xx/3xx answers; the stream stored %d events (%+d in flight at the end)",
        name,
        result.answered,
        stored,
        extra,
    )
    if result.non_2xx_3xx or result.errors:
        log.warning(
            "%s: %d failed answers, %d socket errors", name, result.non_2xx_3xx, result.errors
        )
    if not 0 <= extra <= opts.connections:
        raise RuntimeError(
            f"{name}: {result.answered} answered but {stored} stored: events lost or invented"
        )
    return result.rate


# --- main ---------------------------------------------------------------------------------------


async def run(
    opts: Options, root: Path, procs: benchkit.Processes, nats: NatsServer, pg: PostgresServer
) -> tuple[float, float, float]:
    settings = stack_settings(pg.url, nats.url, root / "data", secret_key=secrets.token_urlsafe(40))
    await migrate(pg.url)
    target = await register_campaign(settings)
    port = free_port()
    tracker = procs.start(
        "tracker",
        [sys.executable, "-m", "pigeon_cli", "serve", "tracker"],
        root / "tracker.log",
        env=tracker_env(settings, port, opts.workers, root),
    )
    base = f"http://{LOOPBACK}:{port}"
    try:
        await wait_tracker(base, target, nats, opts.workers, tracker)
    except Exception:
        log.error("tracker log:\n%s", benchkit.tail(root / "tracker.log"))
        raise
    log.info("tracker ready at %s with %d workers", base, opts.workers)
    assert nats.pid is not None and pg.pid is not None
    nginx_port = free_port()
    nginx_root = root / "nginx"
    nginx_root.mkdir()
    conf = nginx_config(nginx_root, nginx_port, lean=opts.nginx_lean)
    nginx = procs.start(
        "nginx",
        [str(NGINX), "-c", str(conf), "-p", str(nginx_root)],
        root / "nginx.log",
        stop_signal=signal.SIGQUIT,  # graceful stop of master and workers
    )
    nginx_url = f"http://{LOOPBACK}:{nginx_port}/p.png"
    await wait_nginx(nginx_url, nginx, nginx_root)
    tracker_cpu = {"tracker": tracker.pid, "nats-server": nats.pid}
    nc = await connect_nats(nats.url, name="bench-track-count", attempts=3)
    try:
        js = nc.jetstream()
        # nginx right after the pixel: the two figures of the ratio see the same machine.
        opts.cpu = tracker_cpu
        pixel = await measure_tracker(procs, opts, base, target.pixel, OPENED, root, js)
        opts.cpu = {"nginx": nginx.pid}
        await run_wrk(procs, opts, nginx_url, root, "nginx-warmup", WARMUP_SEC)
        nginx_rate = (await run_wrk(procs, opts, nginx_url, root, "nginx", opts.seconds)).rate
        opts.cpu = tracker_cpu
        click = await measure_tracker(procs, opts, base, target.click, CLICKED, root, js)
    finally:
        await nc.close()
    procs.stop(nginx)
    procs.stop(tracker)
    if tracker.returncode not in (0, -signal.SIGTERM):
        log.warning(
            "tracker exited with %s:\n%s", tracker.returncode, benchkit.tail(root / "tracker.log")
        )
    return pixel, click, nginx_rate


async def wait_nginx(url: str, proc: subprocess.Popen[bytes], root: Path) -> None:
    deadline = time.monotonic() + 15
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {benchkit.tail(root / 'nginx-error.log')}")
            with contextlib.suppress(httpx.HTTPError):
                answer = await client.get(url)
                if answer.status_code == 200:
                    assert answer.content == PIXEL, "nginx does not serve the tracker's GIF"
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("nginx not ready")
            await asyncio.sleep(0.05)


def tools_ready() -> bool:
    return shutil.which("wrk") is not None and NGINX.is_file()


def ensure_tools(install: bool) -> int:
    """0 when wrk and nginx are there (installing them if asked), else 2."""
    if tools_ready():
        return 0
    if install and os.geteuid() == 0:
        log.info("installing: %s", " ".join(INSTALL))
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(INSTALL, check=True, env=env, timeout=600)
        if tools_ready():
            return 0
    print(
        "wrk and nginx are needed (Debian: `apt-get install -y wrk nginx-light`, as root);\n"
        "or run this benchmark as root with --install.",
        file=sys.stderr,
    )
    return 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (-c)")
    parser.add_argument("--workers", type=int, default=2, help="PIGEON_TRACKER_WORKERS")
    parser.add_argument(
        "--nginx-lean",
        action="store_true",
        help="nginx without access log and keep-alive request limit (default: stock settings)",
    )
    parser.add_argument(
        "--install", action="store_true", help="apt-get install wrk and nginx-light (root only)"
    )
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.threads < 1 or args.connections < args.threads:
        parser.error("--seconds >= 1, --threads >= 1, --connections >= --threads")
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be 1..64")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchkit.configure("httpx", "pigeon_common", "pigeon_projector", "nats")
    code = ensure_tools(args.install)
    if code:
        return code
    opts = Options(args.seconds, args.threads, args.connections, args.workers, args.nginx_lean)
    procs = benchkit.Processes()
    with benchkit.embedded_servers("track") as (root, nats, pg):
        try:
            overall = 3 * (args.seconds + WARMUP_SEC) + 300
            pixel, click, nginx = asyncio.run(
                asyncio.wait_for(run(opts, root, procs, nats, pg), timeout=overall)
            )
        finally:
            procs.stop_all()
    print(
        f"track: pixel {pixel:.0f} req/s, click {click:.0f} req/s, nginx {nginx:.0f} req/s, "
        f"ratio {pixel / nginx:.3f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
