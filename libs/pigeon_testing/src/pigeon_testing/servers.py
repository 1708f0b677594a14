"""Pytest fixtures: one real nats-server and one real PostgreSQL per test session.

The fixtures are plain synchronous ones, so they work with any event loop. Each server lives
in a folder of `tmp_path_factory` and is stopped (by its process) when the session ends.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import pytest

from pigeon_embedded.nats import NatsServer
from pigeon_embedded.postgres import PostgresServer

FRESH_DATABASE_PREFIX = "t_"


@contextlib.contextmanager
def _new_database(server: PostgresServer) -> Iterator[str]:
    name = f"{FRESH_DATABASE_PREFIX}{secrets.token_hex(8)}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A started nats-server with JetStream on a free port, shared by the whole session."""
    with NatsServer(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    """`nats://127.0.0.1:PORT` of the session's nats-server."""
    return nats_server.url


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A started PostgreSQL (fsync off) on a free port, shared by the whole session."""
    with PostgresServer(tmp_path_factory.mktemp("postgres") / "data", fsync=False) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """`postgresql://postgres@127.0.0.1:PORT/postgres` of the session's PostgreSQL."""
    return postgres_server.url


@pytest.fixture
def fresh_database(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a new, empty database (`t_<hex>`) for one test; dropped after the test."""
    with _new_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="module")
def module_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server of its own for one test module (an empty EVENTS stream)."""
    with NatsServer(tmp_path_factory.mktemp("nats-module")) as server:
        yield server


@pytest.fixture(scope="module")
def module_database(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a new, empty database for one test module; dropped afterwards."""
    with _new_database(postgres_server) as url:
        yield url
