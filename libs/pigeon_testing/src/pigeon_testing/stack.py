"""The services of MC Pigeon running in-process against real servers, for tests and
benchmarks: a migrated database, the projector, and the REST API on a loopback port.

`Stack` is used by the `stack` fixture and by `bench/`; both get the same wiring that
`pigeon up` uses, minus the child processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pigeon_cli.settings import AllSettings
from pigeon_common import db, users
from pigeon_common.auth import TokenSigner
from pigeon_common.domain.access import Role
from pigeon_common.serving import serve_asgi
from pigeon_embedded.ports import free_port

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-123"  # noqa: S105 (the test stack's throwaway admin)


def stack_settings(
    database_url: str, nats_url: str, data_dir: Path, **overrides: Any
) -> AllSettings:
    """Settings for services under test: explicit servers, a throwaway secret, free ports."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "nats_url": nats_url,
        "data_dir": data_dir,
        "secret_key": secrets.token_urlsafe(40),
        "api_port": free_port(),
        "projector_port": free_port(),
        "sender_port": free_port(),
        "tracker_port": free_port(),
        "imap_sync_port": free_port(),
        "read_your_writes_timeout_sec": 10.0,
    }
    values.update(overrides)
    return AllSettings(**values)


async def migrate(database_url: str) -> None:
    conn = await db.connect(database_url)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()


async def create_admin(settings: AllSettings, email: str = ADMIN_EMAIL) -> str:
    """Insert an administrator and return their token; on a database that has them (a
    stack started again, as after a key rotation), their token under the current key."""
    assert settings.database_url is not None
    conn = await db.connect(settings.database_url)
    try:
        signer = TokenSigner(settings.keys())
        try:
            admin = await users.create_user(conn, signer, email, ADMIN_PASSWORD, role=Role.ADMIN)
        except users.UserExistsError:
            token = await users.token_of(conn, signer, email)
            assert token is not None
            return token
    finally:
        await conn.close()
    return admin.token


@dataclass
class SenderHandle:
    """A service started by `Stack.start_service` (a sender, imap-sync...)."""

    stop_event: asyncio.Event
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, timeout=30)


@dataclass
class Stack:
    """API + projector in this event loop; `client` talks to the API over a real socket."""

    settings: AllSettings
    token: str = ""
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    client: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    async def start(self, *, projector: bool = True, sender: bool = False) -> None:
        from pigeon_api.app import create_app
        from pigeon_projector.service import serve as serve_projector

        assert self.settings.database_url is not None
        await migrate(self.settings.database_url)
        self.token = await create_admin(self.settings)
        if projector:
            self.tasks.append(asyncio.create_task(serve_projector(self.settings, self.stop)))
        if sender:
            self.start_sender()
        app = create_app(self.settings)
        self.tasks.append(
            asyncio.create_task(serve_asgi(app, "127.0.0.1", self.settings.api_port, self.stop))
        )
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )
        await self.wait_ready("/readyz")

    def start_sender(self) -> SenderHandle:
        """Run a sender in this loop until `await handle.stop()` (or the stack closes)."""
        from pigeon_sender.service import serve as serve_sender

        return self.start_service(serve_sender)

    def start_imap_sync(self, **overrides: Any) -> SenderHandle:
        """Run imap-sync in this loop (with settings `overrides`) until stopped."""
        from pigeon_imap_sync.service import serve as serve_imap_sync

        settings = self.settings.model_copy(update=overrides)
        return self.start_service(lambda s, stop: serve_imap_sync(settings, stop))

    def start_service(
        self, serve: Callable[[AllSettings, asyncio.Event], Awaitable[None]]
    ) -> SenderHandle:
        """Run `serve(settings, stop)` in this loop until `await handle.stop()` (or the
        stack closes)."""
        stop = asyncio.Event()

        async def run() -> None:
            waiter = asyncio.create_task(self.stop.wait())
            task = asyncio.ensure_future(serve(self.settings, stop))
            await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            waiter.cancel()
            await task

        task = asyncio.create_task(run())
        self.tasks.append(task)
        return SenderHandle(stop, task)

    async def wait_ready(self, path: str, timeout: float = 30) -> None:
        assert self.client is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await self.client.get(path)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.base_url}{path} not ready after {timeout}s")

    async def close(self) -> None:
        self.stop.set()
        if self.client is not None:
            await self.client.aclose()
        for task in self.tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=15)
