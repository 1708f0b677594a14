"""The projector applies every event exactly once and a rebuild gives the same tables."""

from __future__ import annotations

import asyncio
import secrets
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pigeon_common import db
from pigeon_common import events as ev
from pigeon_common.jetstream import EVENTS_STREAM, connect_nats, provision, publish_events
from pigeon_embedded.nats import NatsServer
from pigeon_projector.projection import READ_MODEL_TABLES
from pigeon_projector.projector import StoredEvent, apply_batch, read_checkpoint
from pigeon_projector.rebuild import rebuild
from pigeon_projector.service import ProjectorService
from pigeon_projector.settings import ProjectorSettings
from pigeon_testing.stack import migrate

CRASH_SCRIPT = Path(__file__).with_name("projector_crash.py")


def _config(name: str) -> ev.MailboxConfig:
    server = ev.ServerEndpoint(host="mail.example.com", port=587, security="starttls", username="u")
    return ev.MailboxConfig(
        name=name, from_name="A", from_address="a@example.com", smtp=server, imap=server
    )


def history(campaign_id: uuid.UUID, updates: int) -> list[ev.Envelope]:
    """A campaign created, renamed `updates` times, given recipients, one of them removed."""
    events: list[ev.Event] = [
        ev.CampaignCreated(
            campaign_id=campaign_id, name="v0", subject="s", template_markdown="t", mailbox_id=None
        )
    ]
    for n in range(1, updates + 1):
        events.append(
            ev.CampaignUpdated(
                campaign_id=campaign_id,
                name=f"v{n}",
                subject="s",
                template_markdown="t",
                mailbox_id=None,
                changed=["name"],
            )
        )
    recipients = [
        ev.RecipientData(
            recipient_id=uuid.uuid5(campaign_id, str(i)),
            email=f"r{i}@example.com",
            attributes={"n": i},
        )
        for i in range(6)
    ]
    events.append(ev.RecipientsAdded(campaign_id=campaign_id, recipients=recipients))
    events.append(
        ev.RecipientDeleted(campaign_id=campaign_id, recipient_id=recipients[0].recipient_id)
    )
    mailbox_id = uuid.uuid4()
    events.append(ev.MailboxCreated(mailbox_id=mailbox_id, config=_config("first")))
    events.append(ev.MailboxUpdated(mailbox_id=mailbox_id, config=_config("second")))
    return [ev.envelope_for(e, str(campaign_id)) for e in events]


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    tables = {}
    for table in READ_MODEL_TABLES:
        rows = await conn.fetch(f"SELECT * FROM {table}")
        tables[table] = sorted(tuple(r.values()) for r in rows)
    return tables


@pytest.fixture
async def js_and_db(tmp_path: Path, fresh_database: str):
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    nc = await connect_nats(nats.url, name="test", attempts=3)
    js = nc.jetstream()
    await provision(js)
    await migrate(fresh_database)
    conn = await db.connect(fresh_database)
    try:
        yield nats, js, conn, fresh_database, nc
    finally:
        await conn.close()
        await nc.close()
        nats.stop()


async def _project_until(settings: ProjectorSettings, conn: asyncpg.Connection, seq: int) -> None:
    stop = asyncio.Event()
    service = ProjectorService(settings)
    task = asyncio.create_task(service.run(stop))
    try:
        for _ in range(400):
            if await read_checkpoint(conn) >= seq:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"projector did not reach {seq}")
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_kill_between_commit_and_ack_applies_each_event_once(js_and_db) -> None:
    nats, js, conn, database_url, _nc = js_and_db
    campaign_id = uuid.uuid4()
    sequences = await publish_events(js, history(campaign_id, updates=20))
    last = max(sequences)

    crash = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CRASH_SCRIPT),
        database_url,
        nats.url,
        "2",
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(crash.communicate(), 60)
    assert crash.returncode == 17, stderr.decode()
    # Two batches committed, the second never acked: the restart must not apply it again.
    assert 0 < await read_checkpoint(conn) < last

    settings = ProjectorSettings(
        database_url=database_url,
        nats_url=nats.url,
        secret_key=secrets.token_urlsafe(40),
        projector_batch_size=5,
    )
    await _project_until(settings, conn, last)
    campaign = await conn.fetchrow("SELECT * FROM campaigns WHERE id = $1", campaign_id)
    assert campaign["name"] == "v20"
    assert campaign["last_seq"] == sequences[20]
    recipients = await conn.fetch(
        "SELECT email FROM recipients WHERE campaign_id = $1", campaign_id
    )
    assert sorted(r["email"] for r in recipients) == [f"r{i}@example.com" for i in range(1, 6)]
    assert await conn.fetchval("SELECT name FROM mailboxes") == "second"


async def test_redelivered_events_at_or_below_checkpoint_are_skipped(js_and_db) -> None:
    _nats, _js, conn, _url, _nc = js_and_db
    campaign_id = uuid.uuid4()
    envelopes = history(campaign_id, updates=5)
    raw = [StoredEvent(seq, e.model_dump_json().encode()) for seq, e in enumerate(envelopes, 1)]
    assert await apply_batch(conn, raw[:4]) == 4  # created, v1, v2, v3
    assert await apply_batch(conn, raw[:6]) == 6  # redelivery of 1-4 skipped; v4, v5 applied
    assert await conn.fetchval("SELECT name FROM campaigns") == "v5"
    assert await apply_batch(conn, raw[1:3]) == 6  # an old rename must not come back
    assert await conn.fetchval("SELECT name FROM campaigns") == "v5"


async def test_rebuild_gives_the_live_tables(js_and_db) -> None:
    nats, js, conn, database_url, nc = js_and_db
    for _ in range(3):
        await publish_events(js, history(uuid.uuid4(), updates=3))
    deleted = uuid.uuid4()
    await publish_events(
        js,
        [
            *history(deleted, updates=1),
            ev.envelope_for(ev.CampaignDeleted(campaign_id=deleted), str(deleted)),
        ],
    )
    last = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    settings = ProjectorSettings(
        database_url=database_url, nats_url=nats.url, secret_key=secrets.token_urlsafe(40)
    )
    await _project_until(settings, conn, last)
    live = await snapshot(conn)
    assert len(live["campaigns"]) == 3
    assert await rebuild(conn, nc, js) == last
    assert await snapshot(conn) == live
    assert await read_checkpoint(conn) == last


async def _wait_for_checkpoint(conn: asyncpg.Connection, seq: int) -> None:
    for _ in range(400):
        if await read_checkpoint(conn) >= seq:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"projector did not reach {seq}")


async def test_rebuild_builds_beside_the_live_tables_and_swaps(js_and_db) -> None:
    """Readers are not blocked during a rebuild and read the live tables; a live
    projector keeps going; after the swap the same prepared query reads the new tables,
    which also hold what was published during the rebuild."""
    nats, js, conn, database_url, nc = js_and_db
    campaign_id, later_id = uuid.uuid4(), uuid.uuid4()
    for _ in range(3):
        await publish_events(js, history(uuid.uuid4(), updates=2))
    await publish_events(js, history(campaign_id, updates=3))
    settings = ProjectorSettings(
        database_url=database_url,
        nats_url=nats.url,
        secret_key=secrets.token_urlsafe(40),
        projector_batch_size=5,
    )
    stop = asyncio.Event()
    live_projector = asyncio.create_task(ProjectorService(settings).run(stop))
    reader = await db.connect(database_url)
    rebuilder = await db.connect(database_url)
    try:
        await _wait_for_checkpoint(conn, (await js.stream_info(EVENTS_STREAM)).state.last_seq)
        # Changed by hand, so the live tables and the rebuilt ones tell apart.
        await conn.execute("UPDATE campaigns SET name = 'stale' WHERE id = $1", campaign_id)
        read_name = await reader.prepare("SELECT name FROM campaigns WHERE id = $1")
        during: list[tuple[str, int]] = []

        async def progress(reached: int, target: int) -> None:
            if during:
                return
            name = await asyncio.wait_for(read_name.fetchval(campaign_id), 2)
            states = await asyncio.wait_for(
                reader.fetchval("SELECT count(*) FROM message_results"), 2
            )
            during.append((name, states))
            await publish_events(js, history(later_id, updates=1))

        final = await rebuild(rebuilder, nc, js, batch_size=3, progress=progress)
        assert during == [("stale", 20)]  # the live tables, read while the replay ran
        assert await read_name.fetchval(campaign_id) == "v3"
        last = (await js.stream_info(EVENTS_STREAM)).state.last_seq
        assert final <= last
        await _wait_for_checkpoint(conn, last)
        assert await reader.fetchval("SELECT name FROM campaigns WHERE id = $1", later_id) == "v1"
    finally:
        stop.set()
        await asyncio.wait_for(live_projector, 15)
        await reader.close()
    try:
        after_swap = await snapshot(conn)
        assert await rebuild(rebuilder, nc, js) == last
        assert await snapshot(conn) == after_swap  # what a rebuild from scratch gives
        assert len(after_swap["campaigns"]) == 5
        leftovers = await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pigeon_rebuild'"
        )
        indexes = await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = 'recipients'"
        )
        assert leftovers == 0
        assert {"recipients_pkey", "recipients_email_idx"} <= {r["indexname"] for r in indexes}
    finally:
        await rebuilder.close()


async def test_undecodable_event_is_recorded_and_skipped(js_and_db) -> None:
    _nats, _js, conn, _url, _nc = js_and_db
    good = history(uuid.uuid4(), updates=0)[0]
    batch = [
        StoredEvent(1, b"not json"),
        StoredEvent(
            2, good.model_copy(update={"type": "campaign.exploded"}).model_dump_json().encode()
        ),
        StoredEvent(3, good.model_dump_json().encode()),
    ]
    assert await apply_batch(conn, batch) == 3
    skipped = await conn.fetch("SELECT seq, event_type FROM projection_skipped ORDER BY seq")
    assert [(r["seq"], r["event_type"]) for r in skipped] == [
        (1, "<undecodable>"),
        (2, "campaign.exploded"),
    ]
    assert await conn.fetchval("SELECT count(*) FROM campaigns") == 1


def _every_kind_of_history() -> list[ev.Envelope]:
    """Every event of the catalog, plus the orders that exercise the projection's merging:
    suppress/unsuppress/suppress, unsubscribe/resubscribe/unsubscribe, an `unknown`
    outcome after `sent`, and repeated recipient ids in one batch."""
    from datetime import UTC, datetime, timedelta

    from tests.unit.test_events import SAMPLES

    campaign, mailbox, r1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    many = [
        ev.RecipientData(recipient_id=uuid.uuid5(campaign, str(i)), email=f"p{i}@example.org")
        for i in range(250)
    ]
    renamed = [
        ev.RecipientData(recipient_id=r.recipient_id, email=r.email, name="N", attributes={"k": 1})
        for r in many[:220]
    ]
    base = {"campaign_id": campaign, "recipient_id": r1, "email": "ann@example.org"}
    events: list[ev.Event] = [
        *SAMPLES.values(),
        ev.RecipientsAdded(campaign_id=campaign, recipients=many),
        ev.RecipientsAdded(campaign_id=campaign, recipients=renamed),
        ev.MessageSent(**base, message_id="m@x", smtp_reply="250 ok", appended=False),
        ev.MessageUnknown(**base, reason="late"),
    ]
    for _ in range(2):
        events += [
            ev.AddressSuppressed(email="Ann@Example.org", mailbox_id=mailbox, reason="manual"),
            ev.AddressUnsuppressed(email="ann@example.org", mailbox_id=mailbox, reason=None),
            ev.RecipientUnsubscribed(**base, mailbox_id=mailbox, method="one_click"),
            ev.RecipientResubscribed(**base, mailbox_id=mailbox),
        ]
    events.append(ev.RecipientUnsubscribed(**base, mailbox_id=mailbox, method="page"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        ev.envelope_for(e, "agg", occurred_at=start + timedelta(seconds=i))
        for i, e in enumerate(events)
    ]


async def test_batch_boundaries_do_not_change_the_tables(fresh_database: str) -> None:
    """The same history applied as one batch and one event per batch gives the same read
    models: grouping writes per table and folding the recipients' writes never change the
    result."""
    await migrate(fresh_database)
    stored = [
        StoredEvent(seq, envelope.model_dump_json().encode())
        for seq, envelope in enumerate(_every_kind_of_history(), start=1)
    ]
    conn = await db.connect(fresh_database)
    try:
        results = []
        for size in (len(stored), 1, 7):
            await conn.execute(f"TRUNCATE {', '.join(READ_MODEL_TABLES)}")
            await conn.execute("DELETE FROM projection_checkpoints")
            for start in range(0, len(stored), size):
                await apply_batch(conn, stored[start : start + size])
            results.append(await snapshot(conn))
        assert results[0]["projection_skipped"] == []
        assert len(results[0]["recipients"]) >= 250 and results[0]["suppressions"]
        assert results[1] == results[0] and results[2] == results[0]
    finally:
        await conn.close()
