"""The embedded nats-server and PostgreSQL start, serve real clients and stop cleanly."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import pytest

from pigeon_embedded.errors import EmbeddedServerError
from pigeon_embedded.nats import NatsServer
from pigeon_embedded.pg_sizing import machine_memory, sized_settings
from pigeon_embedded.postgres import PostgresServer


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 held by a listening socket for the duration of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def test_nats_jetstream_stream_and_publish(nats_url: str) -> None:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await js.add_stream(name="EMBEDDED_TEST", subjects=["embedded.test.>"])
        first = await js.publish("embedded.test.a", b"one")
        second = await js.publish("embedded.test.b", b"two")
        assert (first.stream, first.seq, second.seq) == ("EMBEDDED_TEST", 1, 2)
        info = await js.stream_info("EMBEDDED_TEST")
        assert info.state.messages == 2
    finally:
        await client.close()


def test_nats_port_zero_gives_distinct_ports(tmp_path: Path) -> None:
    with NatsServer(tmp_path / "a") as first, NatsServer(tmp_path / "b") as second:
        assert first.port != second.port
        assert first.url == f"nats://127.0.0.1:{first.port}"
        assert (tmp_path / "a" / "nats.log").exists()
    assert first.process.returncode is not None
    assert second.process.returncode is not None


def test_nats_start_failure_shows_log_tail(tmp_path: Path, busy_port: int) -> None:
    server = NatsServer(tmp_path / "nats", port=busy_port)
    with pytest.raises(EmbeddedServerError, match="log tail"):
        server.start(timeout=5)
    assert server.process.returncode is not None


async def test_postgres_fixture_accepts_connections(postgres_url: str) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        assert await connection.fetchval("SELECT 1") == 1
        assert await connection.fetchval("SHOW max_connections") == "200"
        assert await connection.fetchval("SHOW fsync") == "off"
        assert await connection.fetchval("SHOW server_encoding") == "UTF8"
        sized = dict(setting.split("=", 1) for setting in sized_settings(machine_memory()))
        same_size = "SELECT pg_size_bytes(current_setting($1)) = pg_size_bytes($2)"
        for name in ("shared_buffers", "max_wal_size", "maintenance_work_mem"):
            assert await connection.fetchval(same_size, name, sized[name]), name
    finally:
        await connection.close()


async def test_postgres_data_survives_restart(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path / "pg", fsync=False)
    with server:
        connection = await asyncpg.connect(server.url)
        await connection.execute("CREATE TABLE kept (value text)")
        await connection.execute("INSERT INTO kept VALUES ('still here')")
        await connection.close()
    assert server.process.returncode is not None

    with server:
        connection = await asyncpg.connect(server.url)
        assert await connection.fetchval("SELECT value FROM kept") == "still here"
        await connection.close()


def test_postgres_start_failure_shows_log_tail(tmp_path: Path, busy_port: int) -> None:
    server = PostgresServer(tmp_path / "pg", port=busy_port, fsync=False)
    with pytest.raises(EmbeddedServerError, match="Address already in use"):
        server.start()
    assert server.process.returncode is not None


async def test_fresh_database_is_isolated(
    fresh_database: str, postgres_server: PostgresServer
) -> None:
    connection = await asyncpg.connect(fresh_database)
    try:
        name = await connection.fetchval("SELECT current_database()")
        assert name.startswith("t_")
        public_tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        assert await connection.fetchval(public_tables) == 0
        await connection.execute("CREATE TABLE only_here (id int)")
    finally:
        await connection.close()

    other = await asyncpg.connect(postgres_server.url)
    try:
        assert await other.fetchval("SELECT to_regclass('only_here')") is None
    finally:
        await other.close()


def test_created_database_is_dropped(postgres_server: PostgresServer) -> None:
    postgres_server.create_database("t_drop_me")
    listed = "SELECT count(*) FROM pg_database WHERE datname = 't_drop_me'"
    assert postgres_server.psql(listed).strip() == "1"
    postgres_server.drop_database("t_drop_me")
    assert postgres_server.psql(listed).strip() == "0"
