"""Benchmark: a campaign sent through the real path, beside Postfix's smtp-source.

What is measured:
(a) MC Pigeon: the wall time from `POST /api/v1/campaigns/{id}/send` until
    `GET /api/v1/campaigns/{id}/status` says `done` (polled every 0.2 s), for a campaign
    of N recipients: the API enqueues the chunk jobs on JetStream, `--senders` sender
    processes (`python -m pigeon_cli serve sender`, PIGEON_SENDER_CONCURRENCY workers
    each) claim, render and send every message over SMTP, publish the outcomes, the
    projector stores them and the last chunk's sender publishes CampaignCompleted.
    msg/s = N / seconds. With `--append` each chunk's sent messages are also appended to
    the Sent folder of a local Dovecot (`append_to_sent: always`); without it
    `append_to_sent: never`.
(b) smtp-source: Postfix's `smtp-source -d -s 10 -m N -l <size>` (ten sessions, each
    reusing its connection) sending as many messages of the average size of the
    campaign's messages (rendered the sender's way from a sample of its recipients
    before the clock starts), timed as a whole.
Both go to Postfix's `smtp-sink` on 127.0.0.1: one fresh sink per measurement (a sink
for MC Pigeon, then the senders are stopped, then a new sink for smtp-source), so no
connection or state carries over. The ratio is (a) / (b).

The peak RSS is the largest VmHWM (/proc/<pid>/status) over the sender processes, read
while they still run. The campaign: a ~3.5 KB Markdown newsletter with personalization
({{ recipient.name }}, attributes, an `{% if %}`) and nine links, tracked
(`public_base_url` set); recipients are added with `/recipients/bulk`, 10,000 per call,
before the clock starts. The senders are started before the clock too, and the send
begins once (nearly) every worker has a pull request waiting on the job consumer. With
`--append` each Sent folder must hold N messages at the end.

The mailbox sends without SMTP AUTH (an empty SMTP username: a relay without login),
because smtp-sink answers AUTH with `250` where RFC 4954 says `235`. One login per
connection is immaterial to the figures.

stderr also gets the CPU seconds each process spent during the send (senders, this
process, nats-server, PostgreSQL, Dovecot, the sink), and the GET /status latency.
`--sender-command` runs the senders with another command line (to try a change outside
the repository in the same setting).

How: a throwaway nats-server and PostgreSQL (`pigeon_embedded`) in a temporary folder;
the API and the projector run in this process and event loop (`pigeon_testing.stack`).
Everything listens on 127.0.0.1. Every process started here (servers, sink, senders,
smtp-source, py-spy) is stopped by its PID at the end, also on error, Ctrl-C, SIGTERM or
timeout. `--py-spy DIR` records a profile (`--py-spy-format`, flame graph by default) of
each sender and of this process (API + projector) for `--py-spy-seconds` after the send
starts.

Needs `smtp-sink` and `smtp-source` (Debian `postfix`; `--install` installs it when run
as root, without configuring or starting a mail system) and, for `--append`, Dovecot.
(c) takeover: after (a), the same campaign again, with sender-0 SIGKILLed once a third
    is sent and a new sender started at once (as `pigeon up` restarts one); the figure
    is its wall time minus (a)'s. With `--append` it files into a second mailbox, whose
    Sent folder starts empty as (a)'s did.
Progress goes to stderr; the last lines on stdout are
`send: <m> msg/s, smtp-source <s> msg/s, ratio <r>, peak rss <MB> MB` and
`takeover: <s> s from kill to done beyond the undisturbed run`.

    uv run python bench/send.py --recipients 20000 [--append] [--senders 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchkit
import nats
from nats.js.errors import NotFoundError

from pigeon_common import db
from pigeon_common.jetstream import JOBS_STREAM
from pigeon_common.jobs import SENDER_CONSUMER
from pigeon_common.render import RecipientSpec, TrackingSigner, compile_campaign
from pigeon_common.sending import load_spec
from pigeon_embedded.ports import LOOPBACK, free_port
from pigeon_testing.stack import Stack, stack_settings

log = logging.getLogger("bench.send")

API = "/api/v1"
BULK = 10_000
POLL_INTERVAL_SEC = 0.2
PROGRESS_EVERY_SEC = 2.0
SIZE_SAMPLE = 200
PUBLIC_BASE_URL = "https://track.example.com"
SMTP_SINK = Path("/usr/sbin/smtp-sink")
SMTP_SOURCE = Path("/usr/sbin/smtp-source")
SINK_BACKLOG = "1024"
SOURCE_SESSIONS = "10"
IMAP_USER = "bench"
# The takeover campaign files into a mailbox of its own, so that its Sent folder starts
# as empty as the undisturbed one's did (Dovecot's cost per APPEND grows with the folder).
TAKEOVER_IMAP_USER = "bench-takeover"
IMAP_PASSWORD = "bench-secret"
PROCESS_POLL_SEC = 0.005
DONE = "done"
GAVE_UP = {"failed", "cancelled", "paused"}
INSTALL_COMMANDS = (
    'echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections',
    "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix",
)

TEMPLATE = """# {{ campaign.name }}

Hello **{{ recipient.name }}**,

thank you for being with us since {{ recipient.since }}. This month we have news from
{{ recipient.city }} and beyond, a few product updates and an invitation. As always,
you can read everything [on our website](https://www.example.com/news/2025-11) if
your mail program shows this message badly.

## What is new

- The new **Pigeon Pro** plan is out: [see the plans](https://www.example.com/pricing?ref=mail)
- Our mobile app now works offline ([App Store](https://apps.example.com/ios),
  [Google Play](https://apps.example.com/android))
- We moved our {{ recipient.city }} office: the new address is on
  [the contact page](https://www.example.com/contact)
- Reports can now be exported as spreadsheets, and scheduled reports arrive in your
  inbox every Monday morning at the time you choose.

{% if recipient.plan == "pro" %}
### For our Pro customers

As a Pro customer you get early access to the reporting dashboard. Log in with
{{ recipient.email }} and open *Reports*: your account manager will call you this
week to walk you through it.
{% endif %}

## From the blog

**Why your open rates are lower than you think.** Privacy features in mail programs
fetch images ahead of time, so an "open" is not always a reader. We explain what the
numbers still tell you and which ones to watch instead.
[Read the article](https://blog.example.com/open-rates)

**Five subject lines that worked.** We looked at a year of campaigns and picked the
subject lines with the most replies, not just the most opens. The winners are short,
specific and ask a question. [Read the article](https://blog.example.com/subject-lines)

**A checklist before you press send.** Links, images, the plain-text part, the
unsubscribe footer and a test to a real inbox: ten minutes that save a bad day.
[Download the checklist](https://blog.example.com/checklist.pdf)

## Event

Join us on **December 4th** at our yearly meetup. There are talks about deliverability,
about writing better subject lines, and about what makes people open a newsletter at
all. Seats are limited: [reserve yours now](https://events.example.com/meetup-2025).
We will send the recording to everyone who registers, also if you cannot make it.

## Three tips for the month

1. **Send when your readers read.** Look at when your replies arrive, not when the
   opens do: for most lists in {{ recipient.city }} that is Tuesday or Wednesday
   morning, a little before ten.
2. **Keep one call to action.** A letter that asks for five things gets none of them.
   Put the one thing you want first, and repeat it once at the end.
3. **Clean your list every quarter.** Addresses that bounced twice or never opened in a
   year hurt the delivery of everything else you send. Our new report lists them for
   you, and suppressing them takes one click.

## Your account

You are on the **{{ recipient.plan }}** plan, with us since {{ recipient.since }}. You
can change what we send you, or stop it altogether, at any time: every letter has the
link at the bottom, and nothing else is needed. If a colleague should get this letter
instead of you, just forward it; they can sign up with one click from there.

> "The best newsletter we read every month." (a reader from {{ recipient.city }})

Thanks for reading, {{ recipient.name }}, and see you next month.

The team at Example
"""

FIRST = ("Anna", "Jörg", "Zoë", "Mikkel", "Ana", "Chloé", "Łukasz", "Sam", "Priya", "Björn")
LAST = ("Smith", "Müller", "Núñez", "O'Brien", "Kowalski", "Larsen", "Dubois", "Rao")
CITIES = ("Zürich", "Berlin", "København", "Lisbon", "Kraków", "Paris", "Mumbai")
PLANS = ("free", "pro", "team", "enterprise")


def people(count: int) -> list[dict[str, Any]]:
    """`count` recipients with unique addresses, non-ASCII names and a few attributes."""
    return [
        {
            "email": f"user{i}@example.com",
            "name": f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}",
            "attributes": {
                "city": CITIES[i % len(CITIES)],
                "plan": PLANS[i % len(PLANS)],
                "since": 2015 + i % 10,
            },
        }
        for i in range(count)
    ]


# --- processes -------------------------------------------------------------------------------


async def wait_process(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The exit code, or None after `timeout` s (polled: no thread to outlive a cancel)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        code = proc.poll()
        if code is not None or loop.time() >= deadline:
            return code
        await asyncio.sleep(PROCESS_POLL_SEC)


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a running process, in MB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postfix_tools_ready() -> bool:
    return all(p.is_file() and os.access(p, os.X_OK) for p in (SMTP_SINK, SMTP_SOURCE))


def install_postfix() -> None:
    """Install Debian's postfix without configuring or starting a mail system."""
    subprocess.run(
        ["debconf-set-selections"],
        input=b"postfix postfix/main_mailer_type select No configuration\n",
        check=True,
        timeout=60,
    )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "postfix"],
        check=True,
        env=env,
        timeout=600,
    )


def start_sink(
    procs: benchkit.Processes, root: Path, name: str
) -> tuple[subprocess.Popen[bytes], int]:
    """A fresh smtp-sink on a free loopback port (as root it must drop to `postfix`)."""
    port = free_port()
    argv = [str(SMTP_SINK)]
    if os.geteuid() == 0:
        argv += ["-u", "postfix"]
    argv += [f"{LOOPBACK}:{port}", SINK_BACKLOG]
    proc = procs.start(name, argv, root / f"{name}.log")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {proc.returncode}: {benchkit.tail(root / f'{name}.log')}"
            )
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 1) as sock:
            if sock.recv(64).startswith(b"220"):
                return proc, port
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not greet on port {port}")


# --- the benchmark ---------------------------------------------------------------------------


@dataclass
class Options:
    recipients: int
    append: bool
    senders: int
    concurrency: int
    batch_size: int | None
    timeout: float
    py_spy: Path | None
    py_spy_seconds: float
    py_spy_format: str = "flamegraph"
    sender_command: list[str] = field(default_factory=list)
    servers: dict[str, int] = field(default_factory=dict)  # name -> pid, for CPU figures


@dataclass
class Result:
    send_seconds: float = 0.0
    source_seconds: float = 0.0
    message_size: int = 0
    peak_rss_mb: float = 0.0
    sender_cpu: list[float] = field(default_factory=list)
    stack_cpu: float = 0.0
    server_cpu: dict[str, float] = field(default_factory=dict)
    takeover_seconds: float = 0.0


def sender_env(stack: Stack, opts: Options, root: Path) -> dict[str, str]:
    s = stack.settings
    assert s.database_url is not None and s.nats_url is not None and s.secret_key is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
    env.update(
        {
            "PIGEON_DATABASE_URL": s.database_url,
            "PIGEON_NATS_URL": s.nats_url,
            "PIGEON_SECRET_KEY": s.secret_key.get_secret_value(),
            "PIGEON_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "PIGEON_SENDER_PORT": "0",
            "PIGEON_SENDER_CONCURRENCY": str(opts.concurrency),
            "PIGEON_DATA_DIR": str(root / "sender-data"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


async def wait_workers(nats_url: str, workers: int, procs: list[subprocess.Popen[bytes]]) -> None:
    """Until the sender consumer has a pull request waiting from (nearly) every worker."""
    nc = await nats.connect(nats_url, name="bench-send")
    try:
        js = nc.jetstream()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        waiting = 0
        while loop.time() < deadline:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"sender pid {proc.pid} exited with {proc.returncode}")
            with contextlib.suppress(NotFoundError):
                info = await js.consumer_info(JOBS_STREAM, SENDER_CONSUMER)
                waiting = info.num_waiting or 0
                if waiting >= workers:
                    return
            await asyncio.sleep(0.1)
        log.warning("only %d of %d workers waiting for jobs after 60 s; going on", waiting, workers)
    finally:
        await nc.close()


async def create_campaign(
    stack: Stack,
    opts: Options,
    smtp_port: int,
    imap: tuple[str, int] | None,
    imap_user: str = IMAP_USER,
) -> str:
    client = stack.client
    assert client is not None and stack.settings.database_url is not None
    imap_host, imap_port = imap or (LOOPBACK, 9)  # never contacted without --append
    mailbox = {
        "name": "Bench mailbox",
        "from_name": "Example News",
        "from_address": "news@example.com",
        "smtp": {
            "host": LOOPBACK,
            "port": smtp_port,
            "security": "plain",
            "username": "",  # a relay without login: smtp-sink's AUTH answer is not RFC 4954
            "password": "",
        },
        "imap": {
            "host": imap_host,
            "port": imap_port,
            "security": "plain",
            "username": imap_user,
            "password": IMAP_PASSWORD,
        },
        "sent_folder": "Sent" if opts.append else "",
        "append_to_sent": "always" if opts.append else "never",
    }
    created = await client.post(f"{API}/mailboxes", json=mailbox)
    if created.status_code not in (201, 202):
        raise RuntimeError(f"creating the mailbox: HTTP {created.status_code} {created.text[:500]}")
    campaign = await client.post(
        f"{API}/campaigns",
        json={
            "name": "The November letter",
            "subject": "News for {{ recipient.name }}",
            "template_markdown": TEMPLATE,
            "mailbox_id": created.json()["id"],
        },
    )
    if campaign.status_code not in (201, 202):
        raise RuntimeError(
            f"creating the campaign: HTTP {campaign.status_code} {campaign.text[:500]}"
        )
    campaign_id = str(campaign.json()["id"])
    rows = people(opts.recipients)
    for start in range(0, len(rows), BULK):
        added = await client.post(
            f"{API}/campaigns/{campaign_id}/recipients/bulk",
            json={"recipients": rows[start : start + BULK]},
            timeout=120,
        )
        if added.status_code not in (200, 201, 202):
            raise RuntimeError(f"bulk add: HTTP {added.status_code} {added.text[:500]}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while True:
        got = (await client.get(f"{API}/campaigns/{campaign_id}")).json()
        if got["recipient_count"] == opts.recipients:
            break
        if loop.time() > deadline:
            raise TimeoutError(f"recipient_count {got['recipient_count']} of {opts.recipients}")
        await asyncio.sleep(0.1)
    log.info("campaign %s: %d recipients", campaign_id, opts.recipients)
    return campaign_id


async def average_message_size(stack: Stack, campaign_id: str) -> int:
    """The mean size of the campaign's messages, rendered as the sender renders them."""
    assert stack.settings.database_url is not None
    conn = await db.connect(stack.settings.database_url)
    try:
        spec = await load_spec(conn, uuid.UUID(campaign_id), PUBLIC_BASE_URL)
        rows = await conn.fetch(
            "SELECT id, email, name, attributes FROM recipients WHERE campaign_id = $1 LIMIT $2",
            uuid.UUID(campaign_id),
            SIZE_SAMPLE,
        )
    finally:
        await conn.close()
    compiled = compile_campaign(spec, TrackingSigner(stack.settings.keys()))
    sizes = [
        len(compiled.render(RecipientSpec(r["id"], r["email"], r["name"], r["attributes"])).raw)
        for r in rows
    ]
    return round(sum(sizes) / len(sizes))


def start_py_spy(
    procs: benchkit.Processes, opts: Options, targets: list[tuple[str, int]], root: Path
) -> list[subprocess.Popen[bytes]]:
    if opts.py_spy is None:
        return []
    exe = shutil.which("py-spy")
    if exe is None:
        log.warning("py-spy not found; no profiles")
        return []
    opts.py_spy.mkdir(parents=True, exist_ok=True)
    started = []
    for name, pid in targets:
        suffix = {"flamegraph": "svg", "speedscope": "json"}.get(opts.py_spy_format, "txt")
        out = opts.py_spy / f"{name}.{suffix}"
        argv = [exe, "record", "-p", str(pid), "-d", str(int(opts.py_spy_seconds))]
        argv += ["-f", opts.py_spy_format, "-o", str(out)]
        started.append(procs.start(f"py-spy {name}", argv, root / f"py-spy-{name}.log"))
    return started


async def measure_send(
    stack: Stack,
    opts: Options,
    procs: benchkit.Processes,
    root: Path,
    campaign_id: str,
    senders: list[subprocess.Popen[bytes]],
    result: Result,
) -> None:
    client = stack.client
    assert client is not None
    loop = asyncio.get_running_loop()
    cpu_before = [cpu_seconds(p.pid) or 0.0 for p in senders]
    stack_cpu_before = time.process_time()
    servers_before = {name: benchkit.tree_cpu_seconds(pid) for name, pid in opts.servers.items()}
    started = loop.time()
    answer = await client.post(f"{API}/campaigns/{campaign_id}/send", json={}, timeout=120)
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"send: HTTP {answer.status_code} {answer.text[:500]}")
    log.info(
        "POST /send answered HTTP %d after %.2f s: %s",
        answer.status_code,
        loop.time() - started,
        answer.json(),
    )
    spies = start_py_spy(
        procs,
        opts,
        [(f"sender-{i}", p.pid) for i, p in enumerate(senders)] + [("api-projector", os.getpid())],
        root,
    )
    deadline = started + opts.timeout
    last_progress = started
    state: dict[str, Any] = {}
    polls: list[float] = []
    while True:
        asked = loop.time()
        state = (await client.get(f"{API}/campaigns/{campaign_id}/status")).json()
        now = loop.time()
        polls.append(now - asked)
        for proc in senders:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"sender pid {proc.pid} exited with {proc.returncode}:\n"
                    + benchkit.tail(root / f"sender-{senders.index(proc)}.log")
                )
            rss = peak_rss_mb(proc.pid)
            if rss is not None:
                result.peak_rss_mb = max(result.peak_rss_mb, rss)
        if state.get("status") == DONE:
            break
        if state.get("status") in GAVE_UP:
            raise RuntimeError(f"campaign ended {state.get('status')}: {state}")
        if now > deadline:
            raise TimeoutError(f"campaign not done after {opts.timeout} s: {state}")
        if now - last_progress >= PROGRESS_EVERY_SEC:
            last_progress = now
            log.info(
                "%.1f s: sent %s of %s (%.0f msg/s so far)",
                now - started,
                state.get("sent"),
                opts.recipients,
                (state.get("sent") or 0) / (now - started),
            )
        await asyncio.sleep(POLL_INTERVAL_SEC)
    result.send_seconds = loop.time() - started
    result.stack_cpu = time.process_time() - stack_cpu_before
    for name, pid in opts.servers.items():
        result.server_cpu[name] = benchkit.tree_cpu_seconds(pid) - servers_before[name]
    for proc, before in zip(senders, cpu_before, strict=True):
        result.sender_cpu.append((cpu_seconds(proc.pid) or 0.0) - before)
        rss = peak_rss_mb(proc.pid)
        if rss is not None:
            result.peak_rss_mb = max(result.peak_rss_mb, rss)
    log.info("campaign done after %.2f s: %s", result.send_seconds, state)
    log.info(
        "GET /status: %d polls, mean %.1f ms, max %.1f ms",
        len(polls),
        1000 * sum(polls) / len(polls),
        1000 * max(polls),
    )
    if state.get("sent") != opts.recipients:
        raise RuntimeError(f"expected {opts.recipients} sent: {state}")
    for spy in spies:  # let the profiles be written before the senders go
        await wait_process(spy, opts.py_spy_seconds + 30)


async def measure_takeover(
    stack: Stack,
    opts: Options,
    procs: benchkit.Processes,
    root: Path,
    campaign_id: str,
    senders: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    result: Result,
) -> None:
    """The same send again, with sender-0 SIGKILLed a third of the way and a new one
    started at once (as `pigeon up` restarts it): the seconds beyond the undisturbed run."""
    client = stack.client
    assert client is not None
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await client.post(f"{API}/campaigns/{campaign_id}/send", json={}, timeout=120)
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"send: HTTP {answer.status_code} {answer.text[:500]}")
    killed_at: float | None = None
    last_progress = started
    state: dict[str, Any] = {}
    while True:
        state = (await client.get(f"{API}/campaigns/{campaign_id}/status")).json()
        now = loop.time()
        if killed_at is None and (state.get("sent") or 0) >= opts.recipients // 3:
            victim = senders[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed_at = loop.time()
            log.info(
                "takeover: sender-0 killed after %.2f s at %s sent",
                killed_at - started,
                state.get("sent"),
            )
            senders[0] = procs.start(
                "sender-0-again", opts.sender_command, root / "sender-0-again.log", env=env
            )
        if state.get("status") == DONE:
            break
        if state.get("status") in GAVE_UP:
            raise RuntimeError(f"campaign ended {state.get('status')}: {state}")
        if now > started + opts.timeout:
            raise TimeoutError(f"takeover campaign not done after {opts.timeout} s: {state}")
        if now - last_progress >= PROGRESS_EVERY_SEC:
            last_progress = now
            log.info(
                "takeover %.1f s: sent %s, unknown %s, copies pending %s",
                now - started,
                state.get("sent"),
                state.get("unknown"),
                state.get("copies_pending"),
            )
        await asyncio.sleep(POLL_INTERVAL_SEC)
    took = loop.time() - started
    result.takeover_seconds = took - result.send_seconds
    log.info(
        "takeover campaign done after %.2f s (undisturbed %.2f s): %s",
        took,
        result.send_seconds,
        state,
    )
    if state.get("sent", 0) + state.get("unknown", 0) != opts.recipients:
        raise RuntimeError(f"expected {opts.recipients} sent or unknown: {state}")


async def measure_smtp_source(
    procs: benchkit.Processes, root: Path, opts: Options, result: Result
) -> None:
    sink, port = start_sink(procs, root, "smtp-sink-source")
    argv = [
        str(SMTP_SOURCE),
        "-d",
        "-s",
        SOURCE_SESSIONS,
        "-m",
        str(opts.recipients),
        "-l",
        str(result.message_size),
        "-f",
        "a@example.com",
        "-t",
        "b@example.com",
        f"{LOOPBACK}:{port}",
    ]
    log.info("running %s", " ".join(argv))
    started = time.monotonic()
    proc = procs.start("smtp-source", argv, root / "smtp-source.log")
    code = await wait_process(proc, opts.timeout)
    if code is None:
        raise TimeoutError(f"smtp-source not done after {opts.timeout} s")
    result.source_seconds = time.monotonic() - started
    procs.stop(proc)
    if code != 0:
        raise RuntimeError(
            f"smtp-source exited with {code}: {benchkit.tail(root / 'smtp-source.log')}"
        )
    log.info("smtp-source: %d messages in %.2f s", opts.recipients, result.source_seconds)
    procs.stop(sink)


async def run(
    opts: Options,
    root: Path,
    procs: benchkit.Processes,
    database_url: str,
    nats_url: str,
    imap: tuple[str, int] | None,
) -> Result:
    result = Result()
    stack = Stack(
        stack_settings(
            database_url,
            nats_url,
            root / "data",
            public_base_url=PUBLIC_BASE_URL,
            **({"batch_size": opts.batch_size} if opts.batch_size else {}),
        )
    )
    await stack.start()
    try:
        assert stack.client is not None
        for task in stack.tasks:
            if task.done():
                raise RuntimeError(f"a stack service stopped during start: {task!r}")
        sink, sink_port = start_sink(procs, root, "smtp-sink-pigeon")
        opts.servers["smtp-sink"] = sink.pid
        campaign_id = await create_campaign(stack, opts, sink_port, imap)
        result.message_size = await average_message_size(stack, campaign_id)
        log.info("average message size %d bytes", result.message_size)
        env = sender_env(stack, opts, root)
        senders = []
        for i in range(opts.senders):
            senders.append(
                procs.start(
                    f"sender-{i}",
                    opts.sender_command,
                    root / f"sender-{i}.log",
                    env=env,
                )
            )
        await wait_workers(nats_url, opts.senders * opts.concurrency, senders)
        await measure_send(stack, opts, procs, root, campaign_id, senders, result)
        again = await create_campaign(stack, opts, sink_port, imap, TAKEOVER_IMAP_USER)
        await measure_takeover(stack, opts, procs, root, again, senders, env, result)
        for proc in senders:
            procs.stop(proc)
        procs.stop(sink)
        await measure_smtp_source(procs, root, opts, result)
        return result
    finally:
        await stack.close()


def sent_folder_count(dovecot: Any, user: str) -> int:
    """How many messages `user`'s Sent folder holds (IMAP STATUS)."""
    with dovecot.imap(user) as client:
        typ, data = client.status('"Sent"', "(MESSAGES)")
    if typ != "OK":
        raise RuntimeError(f"STATUS Sent failed: {data!r}")
    return int(data[0].decode().rpartition("MESSAGES ")[2].rstrip(")"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000, help="messages to send")
    parser.add_argument("--append", action="store_true", help="also append to Sent (Dovecot)")
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="PIGEON_SENDER_CONCURRENCY of each sender"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="recipients per chunk job (default: 100)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="bound of each measurement, in seconds"
    )
    parser.add_argument(
        "--install", action="store_true", help="install postfix's tools if missing (root only)"
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="record py-spy flame graphs of the senders and the stack into DIR",
    )
    parser.add_argument("--py-spy-seconds", type=float, default=10.0)
    parser.add_argument(
        "--logs", type=Path, default=None, metavar="DIR", help="copy the senders' logs into DIR"
    )
    parser.add_argument(
        "--sender-command",
        default=None,
        help="run each sender with this command line instead of `python -m pigeon_cli serve "
        "sender` (for trying a change outside the repository; same environment)",
    )
    parser.add_argument(
        "--py-spy-format", choices=("flamegraph", "raw", "speedscope"), default="flamegraph"
    )
    args = parser.parse_args(argv)
    if args.recipients < 1 or args.senders < 1 or not 1 <= args.concurrency <= 64:
        parser.error("--recipients and --senders must be >= 1, --concurrency 1..64")
    return args


def ensure_postfix(install: bool) -> int:
    """0 when smtp-sink and smtp-source are there (installing them if asked), else 2."""
    if postfix_tools_ready():
        return 0
    if install and os.geteuid() == 0:
        log.info("installing postfix (no configuration, not started)")
        install_postfix()
        if postfix_tools_ready():
            return 0
    print(
        f"{SMTP_SINK} / {SMTP_SOURCE} missing: install Postfix's test tools (as root), e.g.\n  "
        + "\n  ".join(INSTALL_COMMANDS)
        + "\nor run this benchmark as root with --install.",
        file=sys.stderr,
    )
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchkit.configure("httpx")
    code = ensure_postfix(args.install)
    if code:
        return code
    opts = Options(
        recipients=args.recipients,
        append=args.append,
        senders=args.senders,
        concurrency=args.concurrency,
        batch_size=args.batch_size,
        timeout=args.timeout,
        py_spy=args.py_spy,
        py_spy_seconds=args.py_spy_seconds,
        py_spy_format=args.py_spy_format,
        sender_command=(
            shlex.split(args.sender_command)
            if args.sender_command
            else [sys.executable, "-m", "pigeon_cli", "serve", "sender"]
        ),
    )
    procs = benchkit.Processes()
    with benchkit.embedded_servers("send") as (root, nats_server, postgres):
        dovecot = None
        try:
            opts.servers.update({"nats-server": nats_server.pid, "postgres": postgres.pid})
            imap = None
            if opts.append:
                from pigeon_testing.dovecot import DovecotServer

                dovecot = DovecotServer(root / "dovecot")
                dovecot.add_user(IMAP_USER, IMAP_PASSWORD)
                dovecot.add_user(TAKEOVER_IMAP_USER, IMAP_PASSWORD)
                dovecot.start()
                log.info("dovecot pid %s at %s:%d", dovecot.pid, dovecot.host, dovecot.port)
                imap = (dovecot.host, dovecot.port)
                assert dovecot.pid is not None
                opts.servers["dovecot"] = dovecot.pid
            # Setup (bulk adds) + the send + smtp-source, each bounded; all of it too.
            overall = 2 * opts.timeout + 300
            result = asyncio.run(
                asyncio.wait_for(
                    run(opts, root, procs, postgres.url, nats_server.url, imap), timeout=overall
                )
            )
            if dovecot is not None:
                for user in (IMAP_USER, TAKEOVER_IMAP_USER):
                    filed = sent_folder_count(dovecot, user)
                    log.info("Sent folder of %s holds %d messages", user, filed)
                    # Every message, the takeover's unknown ones too (they may have gone).
                    if filed != opts.recipients:
                        raise RuntimeError(f"{filed} in Sent of {user}, not {opts.recipients}")
        finally:
            procs.stop_all()
            if dovecot is not None:
                dovecot.stop()
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                for path in root.glob("sender-*.log"):
                    shutil.copy(path, args.logs / path.name)
    send_rate = opts.recipients / result.send_seconds
    source_rate = opts.recipients / result.source_seconds
    cpu = ", ".join(f"{c:.1f}" for c in result.sender_cpu)
    servers = ", ".join(f"{name} {c:.1f}" for name, c in result.server_cpu.items())
    log.info(
        "send %.2f s; CPU seconds: senders %s (%.0f us/msg), API+projector %.1f, %s",
        result.send_seconds,
        cpu,
        1e6 * sum(result.sender_cpu) / opts.recipients,
        result.stack_cpu,
        servers,
    )
    print(
        f"send: {send_rate:.0f} msg/s, smtp-source {source_rate:.0f} msg/s, "
        f"ratio {send_rate / source_rate:.3f}, peak rss {result.peak_rss_mb:.0f} MB",
        flush=True,
    )
    print(
        f"takeover: {result.takeover_seconds:.1f} s from kill to done beyond the undisturbed run",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
