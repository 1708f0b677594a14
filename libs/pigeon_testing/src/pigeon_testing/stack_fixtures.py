"""The `stack` fixture: API + projector on a module's own NATS and database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pigeon_embedded.nats import NatsServer
from pigeon_testing.stack import Stack, stack_settings


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    module_nats: NatsServer, module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """A running API and projector, with an admin token; `stack.client` is authenticated."""
    settings = stack_settings(module_database, module_nats.url, tmp_path_factory.mktemp("data"))
    running = Stack(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sending_stack(
    module_nats: NatsServer, module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """API + projector with a tracker base URL and short job ack waits; no sender runs
    until a test starts one (`running_sender`, or `stack.start_sender()`)."""
    settings = stack_settings(
        module_database,
        module_nats.url,
        tmp_path_factory.mktemp("data"),
        public_base_url="http://127.0.0.1:9",
        job_ack_wait_sec=5.0,
    )
    running = Stack(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.close()


@pytest_asyncio.fixture(loop_scope="session")
async def running_sender(sending_stack: Stack) -> AsyncIterator[Stack]:
    """A sender working for `sending_stack` during one test."""
    sender = sending_stack.start_sender()
    try:
        yield sending_stack
    finally:
        await sender.stop()
