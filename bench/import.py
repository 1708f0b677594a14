"""Benchmark: CSV import of N recipients through the REST API until they are readable.

What is measured: the wall time from the start of
`POST /api/v1/campaigns/{id}/recipients/import` (a `text/csv` body of N rows: email, name,
city, plan; unique addresses `user<i>@example.com`) until `GET /api/v1/campaigns/{id}`
reports `recipient_count == N`. That covers upload, CSV parsing and validation, building
the RecipientsAdded events, publishing them to JetStream, the projector applying them to
PostgreSQL, and the read-your-writes wait (the import normally answers only once the
projector caught up; if it answers 202, the script polls until the count is reached).

How: a throwaway nats-server and PostgreSQL (fsync on unless `--no-fsync`) are started on
127.0.0.1 in a temporary folder; the API and the projector run in this process and event
loop (`pigeon_testing.stack.Stack`), as in the integration tests. The CSV is built before
the clock starts. The servers are stopped by their process at the end, also on error,
Ctrl-C, SIGTERM or `--timeout`.

Progress goes to stderr; the last line on stdout is `import: <rows> rows in <s> s`.

    uv run python bench/import.py --rows 100000 [--no-fsync] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import benchkit
import httpx

from pigeon_testing.stack import Stack, stack_settings

log = logging.getLogger("bench.import")

API = "/api/v1"
CITIES = ("Berlin", "Paris", "Lisbon", "Oslo", "Vienna", "Madrid", "Dublin", "Prague")
PLANS = ("free", "pro", "team", "enterprise")
POLL_INTERVAL_SEC = 0.05


def make_csv(rows: int) -> bytes:
    """A recipients CSV with a header row and `rows` unique addresses."""
    lines = ["email,name,city,plan"]
    for i in range(rows):
        lines.append(
            f"user{i}@example.com,User {i},{CITIES[i % len(CITIES)]},{PLANS[i % len(PLANS)]}"
        )
    return ("\n".join(lines) + "\n").encode()


async def run_import(
    database_url: str, nats_url: str, data_dir: Path, rows: int, poll_timeout: float
) -> float:
    """Start the stack, import the CSV, return the seconds until all rows are readable."""
    body = make_csv(rows)
    log.info("CSV ready: %d rows, %.1f MB", rows, len(body) / 1e6)
    stack = Stack(stack_settings(database_url, nats_url, data_dir))
    await stack.start()
    try:
        assert stack.client is not None
        for task in stack.tasks:
            if task.done():  # e.g. the API port was taken between picking and binding it
                raise RuntimeError(f"a stack service stopped during start: {task!r}")
        client = stack.client
        created = await client.post(
            f"{API}/campaigns", json={"name": "Bench import", "subject": "Hello {{ name }}"}
        )
        if created.status_code not in (201, 202):
            raise RuntimeError(
                f"creating the campaign failed: HTTP {created.status_code} {created.text[:500]}"
            )
        campaign_id = created.json()["id"]
        log.info("campaign %s created (HTTP %d); importing", campaign_id, created.status_code)

        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await client.post(
            f"{API}/campaigns/{campaign_id}/recipients/import",
            content=body,
            headers={"Content-Type": "text/csv"},
            timeout=httpx.Timeout(poll_timeout),
        )
        answered = loop.time() - started
        if answer.status_code not in (200, 202):
            raise RuntimeError(f"import failed: HTTP {answer.status_code} {answer.text[:500]}")
        result = answer.json()
        log.info(
            "import answered HTTP %d after %.2f s: imported=%s rejected=%s",
            answer.status_code,
            answered,
            result.get("imported"),
            result.get("rejected_count"),
        )
        deadline = started + poll_timeout
        count = -1
        while True:
            got = await client.get(f"{API}/campaigns/{campaign_id}")
            got.raise_for_status()
            count = int(got.json()["recipient_count"])
            if count == rows:
                break
            if count > rows:
                raise RuntimeError(f"recipient_count {count} exceeds {rows}")
            if loop.time() > deadline:
                raise TimeoutError(f"recipient_count {count} of {rows} after {poll_timeout} s")
            log.info("recipient_count %d of %d", count, rows)
            await asyncio.sleep(POLL_INTERVAL_SEC)
        elapsed = loop.time() - started
        log.info("recipient_count %d reached after %.2f s", count, elapsed)
        return elapsed
    finally:
        await stack.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="recipients in the CSV")
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="run PostgreSQL with fsync, synchronous_commit and full_page_writes off",
    )
    parser.add_argument("--uvloop", action="store_true", help="run the event loop on uvloop")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up after this many seconds"
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchkit.configure("httpx")
    with benchkit.embedded_servers("import", fsync=not args.no_fsync) as (root, nats, postgres):
        coro = asyncio.wait_for(
            run_import(postgres.url, nats.url, root / "data", args.rows, args.timeout),
            timeout=args.timeout,
        )
        if args.uvloop:
            import uvloop

            elapsed = uvloop.run(coro)
        else:
            elapsed = asyncio.run(coro)
    print(f"import: {args.rows} rows in {elapsed:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
