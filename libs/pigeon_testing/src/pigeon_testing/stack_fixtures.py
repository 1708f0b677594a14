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
