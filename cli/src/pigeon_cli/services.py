"""The services `pigeon serve NAME` runs, each with its own settings class, and the
order `pigeon up` starts them in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pigeon_api.settings import ApiSettings
from pigeon_cli.settings import AllSettings
from pigeon_common.serving import serve_asgi
from pigeon_common.settings import ProcessSettings, SharedSettings
from pigeon_imap_sync.settings import ImapSyncSettings
from pigeon_mcp.settings import McpSettings
from pigeon_projector.settings import ProjectorSettings
from pigeon_sender.settings import SenderSettings
from pigeon_tracker.settings import TrackerSettings

S = TypeVar("S", bound=ProcessSettings)


@dataclass(frozen=True)
class Service(Generic[S]):
    """A service's settings class and its main: `main(settings, stop)`."""

    settings: type[S]
    main: Callable[[S, asyncio.Event], Awaitable[None]]

    @property
    def needs_servers(self) -> bool:
        """False for a service that only talks to the REST API (no database or NATS URL)."""
        return issubclass(self.settings, SharedSettings)


async def run_api(settings: ApiSettings, stop: asyncio.Event) -> None:
    from pigeon_api.app import create_app
    from pigeon_api.context import ApiContext

    app = create_app(settings)
    context: ApiContext = app.state.context
    context.on_fatal = stop.set  # a query that does not prepare stops the process
    await serve_asgi(app, settings.api_host, settings.api_port, stop)
    if context.fatal is not None:
        raise context.fatal


async def run_projector(settings: ProjectorSettings, stop: asyncio.Event) -> None:
    from pigeon_projector.service import serve

    await serve(settings, stop)


async def run_sender(settings: SenderSettings, stop: asyncio.Event) -> None:
    from pigeon_sender.service import serve

    await serve(settings, stop)


async def run_tracker(settings: TrackerSettings, stop: asyncio.Event) -> None:
    from pigeon_tracker.service import serve

    await serve(settings, stop)


async def run_imap_sync(settings: ImapSyncSettings, stop: asyncio.Event) -> None:
    from pigeon_imap_sync.service import serve

    await serve(settings, stop)


async def run_mcp(settings: McpSettings, stop: asyncio.Event) -> None:
    from pigeon_mcp.service import serve

    await serve(settings, stop)


SERVICES: dict[str, Service[Any]] = {
    "projector": Service(ProjectorSettings, run_projector),
    "api": Service(ApiSettings, run_api),
    "sender": Service(SenderSettings, run_sender),
    "tracker": Service(TrackerSettings, run_tracker),
    "imap-sync": Service(ImapSyncSettings, run_imap_sync),
    "mcp": Service(McpSettings, run_mcp),
}


def health_urls(settings: AllSettings) -> dict[str, str]:
    """Where each service answers /healthz and /readyz."""
    return {
        "api": f"http://{settings.api_host}:{settings.api_port}",
        "projector": f"http://{settings.projector_host}:{settings.projector_port}",
        "sender": f"http://{settings.sender_host}:{settings.sender_port}",
        "tracker": f"http://{settings.tracker_host}:{settings.tracker_port}",
        "imap-sync": f"http://{settings.imap_sync_host}:{settings.imap_sync_port}",
        "mcp": f"http://{settings.mcp_host}:{settings.mcp_port}",
    }
