"""The services' one start-up path against real PostgreSQL and NATS: every named query
prepares on the migrated schema, a typo stops a service at start (not on first use), and
an unmigrated database keeps it waiting with the reason in /readyz."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from pathlib import Path

import pytest

import pigeon_api.context
import pigeon_projector.service
from pigeon_api.app import create_app
from pigeon_common import db
from pigeon_common.queries import Queries, QueryError, parse_queries
from pigeon_common.runtime import Boot, Readiness, start
from pigeon_embedded.nats import NatsServer
from pigeon_imap_sync.service import BOOT as IMAP_SYNC_BOOT
from pigeon_projector.service import BOOT as PROJECTOR_BOOT
from pigeon_projector.service import ProjectorService
from pigeon_projector.settings import ProjectorSettings
from pigeon_sender.service import BOOT as SENDER_BOOT
from pigeon_sender.store import SQL as SENDER_SQL
from pigeon_testing.stack import migrate, stack_settings
from pigeon_tracker.worker import BOOT as TRACKER_BOOT

START_TIMEOUT_SEC = 30.0
TYPO = Queries(parse_queries("-- name: fine\nSELECT 1;\n-- name: broken\nSELEC id FROM users;\n"))
UNKNOWN_COLUMN = Queries(parse_queries("-- name: no-such-column\nSELECT nickname FROM users;\n"))


def _settings(database_url: str, nats_url: str) -> ProjectorSettings:
    return ProjectorSettings(
        database_url=database_url, nats_url=nats_url, secret_key=secrets.token_urlsafe(40)
    )


@pytest.mark.parametrize(
    "boot",
    [
        pigeon_api.context.BOOT,
        PROJECTOR_BOOT,
        SENDER_BOOT,
        TRACKER_BOOT,
        IMAP_SYNC_BOOT,
    ],
    ids=lambda boot: boot.name,
)
async def test_every_service_prepares_its_queries_at_start(
    fresh_database: str, nats_server: NatsServer, boot: Boot
) -> None:
    await migrate(fresh_database)
    readiness = Readiness()
    settings = _settings(fresh_database, nats_server.url)
    conns = await asyncio.wait_for(start(settings, boot, readiness), START_TIMEOUT_SEC)
    try:
        assert sum(len(q.items()) for q in boot.all_queries) > len(boot.queries)
    finally:
        await conns.close()


@pytest.mark.parametrize(
    ("queries", "name", "error"),
    [(TYPO, "broken", "PostgresSyntaxError"), (UNKNOWN_COLUMN, "no_such_column", "Undefined")],
)
async def test_a_query_that_does_not_prepare_fails_at_start(
    fresh_database: str, nats_server: NatsServer, queries: Queries, name: str, error: str
) -> None:
    await migrate(fresh_database)
    boot = Boot("pigeon-test", (queries,), pool_size=1)
    with pytest.raises(QueryError) as caught:
        await asyncio.wait_for(
            start(_settings(fresh_database, nats_server.url), boot, Readiness()),
            START_TIMEOUT_SEC,
        )
    assert caught.value.name == name
    assert error in caught.value.reason
    assert f"query {name!r} of {queries.origin}" in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_a_service_with_a_typo_stops_at_start(
    fresh_database: str, nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate(fresh_database)
    broken = dataclasses.replace(PROJECTOR_BOOT, queries=(*PROJECTOR_BOOT.queries, TYPO))
    monkeypatch.setattr(pigeon_projector.service, "BOOT", broken)
    service = ProjectorService(_settings(fresh_database, nats_server.url))
    with pytest.raises(QueryError, match="broken"):
        await asyncio.wait_for(service.run(asyncio.Event()), START_TIMEOUT_SEC)
    assert not service.readiness.ready


async def test_the_api_with_a_typo_is_never_ready_and_stops_its_server(
    fresh_database: str, nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await migrate(fresh_database)
    monkeypatch.setattr(
        pigeon_api.context, "BOOT", Boot("pigeon-api", (pigeon_api.context.SQL, TYPO))
    )
    app = create_app(stack_settings(fresh_database, nats_server.url, tmp_path / "data"))
    context: pigeon_api.context.ApiContext = app.state.context
    stopped = asyncio.Event()
    context.on_fatal = stopped.set
    await context.start()
    try:
        await asyncio.wait_for(stopped.wait(), START_TIMEOUT_SEC)
        assert isinstance(context.fatal, QueryError) and context.fatal.name == "broken"
        readiness = await context.check_ready()
        assert not readiness.ready and "'broken'" in str(readiness.reason)
    finally:
        await context.stop()


async def test_an_unmigrated_database_is_waited_for(
    fresh_database: str, nats_server: NatsServer
) -> None:
    readiness = Readiness()
    boot = Boot("pigeon-test", (SENDER_SQL,), pool_size=1)
    starting = asyncio.create_task(
        start(_settings(fresh_database, nats_server.url), boot, readiness)
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_SEC
    while "not migrated" not in str(readiness.reason):
        assert not starting.done(), "start returned (or failed) on an unmigrated database"
        assert loop.time() < deadline, f"still: {readiness.reason}"
        await asyncio.sleep(0.05)
    assert "pigeon migrate" in str(readiness.reason)
    assert db.migration_files()[0][0] in str(readiness.reason)
    await migrate(fresh_database)
    conns = await asyncio.wait_for(starting, START_TIMEOUT_SEC)
    await conns.close()
