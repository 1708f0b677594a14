"""Benchmark: the admin's list and number pages over many messages.

What is measured: the server time (the `Server-Timing: app;dur=` the admin sets around
each page handler, template rendering included) of three pages, median of 20 requests
each, after one warm-up:

- the campaigns page (`/admin/campaigns`, 20 campaigns with every counter),
- one campaign's page (`/admin/campaigns/<id>`: numbers, opens and clicks over time, the
  link table),
- a state filter page (`/admin/campaigns/<id>/recipients?state=opened_human`).

The data: `--campaigns` campaigns (100) over `--messages` messages (1,000,000), each one
sent, about 40 % opened (a third of those by a machine), 15 % clicked, 2 % bounced, 1 %
replied. Loaded with COPY straight into the read-model tables, then each campaign's
message states and counters computed by the same SQL functions the projector calls
(migration 0008), so the pages read exactly what the projector would have left.

How: a throwaway nats-server and PostgreSQL on 127.0.0.1 (fsync off) in a temporary
folder and the API + projector in this process (pigeon_testing.stack), stopped at the end
also on error, Ctrl-C or SIGTERM. Progress goes to stderr; the last line on stdout is
`admin: campaigns page <ms> ms, campaign page <ms> ms, state filter page <ms> ms`.

    ./run bench admin [--campaigns 100] [--messages 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import benchkit
import httpx

from pigeon_testing.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, stack_settings

log = logging.getLogger("bench.admin")
ROUNDS = 20
START = datetime(2026, 11, 1, tzinfo=UTC)
LINKS = ("https://example.org/a", "https://example.org/b", "https://example.org/c")


def _campaign_rows(campaign: uuid.UUID, n: int, rng: random.Random) -> dict[str, list[tuple]]:
    rows: dict[str, list[tuple]] = {
        "recipients": [],
        "messages": [],
        "open_events": [],
        "link_clicks": [],
        "delivery_events": [],
    }
    for i in range(n):
        rid = uuid.uuid5(campaign, str(i))
        email = f"person{i}@example.org"
        sent_at = START + timedelta(seconds=i // 50)
        rows["recipients"].append((campaign, rid, email, f"Person {i}", "{}", START, START))
        rows["messages"].append(
            (
                campaign,
                rid,
                email,
                "sent",
                4,
                f"m{i}@x",
                None,
                "250 ok",
                False,
                True,
                "",
                sent_at,
                1,
            )
        )
        roll = rng.random()
        if roll < 0.40:
            machine = roll < 0.13
            for k in range(1 + (i % 2)):
                at = sent_at + timedelta(minutes=5 + rng.randrange(72 * 60) + k)
                rows["open_events"].append(
                    (uuid.uuid4(), campaign, rid, at, machine, "proxy" if machine else "", "ua")
                )
        if roll < 0.15:
            at = sent_at + timedelta(minutes=10 + rng.randrange(72 * 60))
            link = i % len(LINKS)
            rows["link_clicks"].append(
                (uuid.uuid4(), campaign, rid, link, LINKS[link], at, False, "", "ua")
            )
        if 0.97 < roll < 0.99:
            rows["delivery_events"].append(
                (
                    f"bounced:b{i}:{rid}",
                    campaign,
                    rid,
                    email,
                    None,
                    "bounced",
                    roll < 0.98,
                    False,
                    "5.1.1",
                    "failed",
                    "550 no such user",
                    "",
                    "",
                    f"b{i}",
                    sent_at,
                )
            )
        elif roll >= 0.99:
            rows["delivery_events"].append(
                (
                    f"replied:r{i}:{rid}",
                    campaign,
                    rid,
                    email,
                    None,
                    "replied",
                    False,
                    False,
                    "",
                    "",
                    "",
                    email,
                    "Re: hello",
                    f"r{i}",
                    sent_at + timedelta(hours=2),
                )
            )
    return rows


async def load(database_url: str, campaigns: int, messages: int) -> list[uuid.UUID]:
    """COPY the read models in, then compute states and counters campaign by campaign."""
    rng = random.Random(7)
    # A plain connection: COPY needs asyncpg's own (binary) jsonb codec.
    conn = await asyncpg.connect(database_url)
    ids = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(campaigns)]
    per = messages // campaigns
    try:
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "campaigns",
            records=[
                (
                    cid,
                    f"Campaign {n}",
                    f"Subject {n}",
                    "Hello",
                    None,
                    "done",
                    START + timedelta(hours=n),
                    START + timedelta(hours=n),
                    1,
                )
                for n, cid in enumerate(ids)
            ],
            columns=[
                "id",
                "name",
                "subject",
                "template_markdown",
                "mailbox_id",
                "status",
                "created_at",
                "updated_at",
                "last_seq",
            ],
        )
        await conn.copy_records_to_table(
            "campaign_links",
            records=[(cid, i, url) for cid in ids for i, url in enumerate(LINKS)],
        )
        columns = {
            "recipients": [
                "campaign_id",
                "id",
                "email",
                "name",
                "attributes",
                "created_at",
                "updated_at",
            ],
            "messages": [
                "campaign_id",
                "recipient_id",
                "email",
                "status",
                "rank",
                "message_id",
                "smtp_code",
                "smtp_reply",
                "hard_bounce",
                "appended",
                "reason",
                "at",
                "last_seq",
            ],
            "open_events": [
                "id",
                "campaign_id",
                "recipient_id",
                "at",
                "machine",
                "machine_reason",
                "user_agent",
            ],
            "link_clicks": [
                "id",
                "campaign_id",
                "recipient_id",
                "link_index",
                "url",
                "at",
                "machine",
                "machine_reason",
                "user_agent",
            ],
            "delivery_events": [
                "id",
                "campaign_id",
                "recipient_id",
                "email",
                "mailbox_id",
                "kind",
                "hard",
                "repeatable",
                "status",
                "action",
                "diagnostic",
                "from_address",
                "subject",
                "source",
                "at",
            ],
        }
        for n, cid in enumerate(ids):
            rows = _campaign_rows(cid, per, rng)
            for table, records in rows.items():
                await conn.copy_records_to_table(table, records=records, columns=columns[table])
            if n % 10 == 9:
                log.info("copied %d campaigns (%.0f s)", n + 1, time.perf_counter() - started)
        await conn.execute("ANALYZE")
        log.info("computing message states and counters")
        for n, cid in enumerate(ids):
            recipients = [
                r["id"]
                for r in await conn.fetch("SELECT id FROM recipients WHERE campaign_id = $1", cid)
            ]
            await conn.execute(
                "INSERT INTO message_states SELECT * FROM compute_message_states($1, $2)",
                [cid] * len(recipients),
                recipients,
            )
            if n % 10 == 9:
                log.info("states of %d campaigns (%.0f s)", n + 1, time.perf_counter() - started)
        await conn.execute(
            "INSERT INTO campaign_counters (campaign_id, counter, n)"
            " SELECT s.campaign_id, k.counter, sum(k.n) FROM message_states s,"
            " LATERAL message_state_counters(s) k GROUP BY 1, 2"
        )
        await conn.execute("VACUUM ANALYZE")
        log.info("loaded %d messages in %.0f s", per * campaigns, time.perf_counter() - started)
    finally:
        await conn.close()
    return ids


SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


async def median_ms(client: httpx.AsyncClient, path: str) -> float:
    await client.get(path)  # warm-up
    times = []
    for _ in range(ROUNDS):
        response = await client.get(path)
        response.raise_for_status()
        match = SERVER_TIMING.search(response.headers.get("server-timing", ""))
        assert match is not None, f"{path}: no Server-Timing header"
        times.append(float(match.group(1)))
    return statistics.median(times)


async def run(root: Path, nats_url: str, postgres, campaigns: int, messages: int) -> str:
    database_url = postgres.create_database("bench")
    settings = stack_settings(database_url, nats_url, root / "data")
    stack = Stack(settings)
    await stack.start()
    try:
        ids = await load(database_url, campaigns, messages)
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as client:
            page = await client.get("/admin/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            signed = await client.post(
                "/admin/login",
                data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf": csrf.group(1)},
            )
            assert signed.status_code == 303, signed.text
            middle = ids[len(ids) // 2]
            list_ms = await median_ms(client, "/admin/campaigns")
            campaign_ms = await median_ms(client, f"/admin/campaigns/{middle}")
            state_ms = await median_ms(
                client, f"/admin/campaigns/{middle}/recipients?state=opened_human"
            )
    finally:
        await stack.close()
    return (
        f"admin: campaigns page {list_ms:.1f} ms, campaign page {campaign_ms:.1f} ms, "
        f"state filter page {state_ms:.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    benchkit.configure("nats", "pigeon_api", "pigeon_projector", "pigeon_common", "httpx")
    with benchkit.embedded_servers("admin", fsync=False) as (root, nats, postgres):
        line = asyncio.run(run(root, nats.url, postgres, args.campaigns, args.messages))
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
