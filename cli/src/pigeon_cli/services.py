"""The services `pigeon serve NAME` runs, and the order `pigeon up` starts them in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pigeon_common.serving import serve_asgi
from pigeon_common.settings import PigeonSettings

ServiceMain = Callable[[PigeonSettings, asyncio.Event], Awaitable[None]]


async def run_api(settings: PigeonSettings, stop: asyncio.Event) -> None:
    from pigeon_api.app import create_app

    await serve_asgi(create_app(settings), settings.api_host, settings.api_port, stop)


async def run_projector(settings: PigeonSettings, stop: asyncio.Event) -> None:
    from pigeon_projector.service import serve

    await serve(settings, stop)


async def run_sender(settings: PigeonSettings, stop: asyncio.Event) -> None:
    from pigeon_sender.service import serve

    await serve(settings, stop)


async def run_tracker(settings: PigeonSettings, stop: asyncio.Event) -> None:
    from pigeon_tracker.service import serve

    await serve(settings, stop)


async def run_imap_sync(settings: PigeonSettings, stop: asyncio.Event) -> None:
    from pigeon_imap_sync.service import serve

    await serve(settings, stop)


async def run_mcp(settings: PigeonSettings, stop: asyncio.Event) -> None:
    from pigeon_mcp.service import serve

    await serve(settings, stop)


SERVICES: dict[str, ServiceMain] = {
    "projector": run_projector,
    "api": run_api,
    "sender": run_sender,
    "tracker": run_tracker,
    "imap-sync": run_imap_sync,
    "mcp": run_mcp,
}
# Services that only talk to the REST API: they need no database or NATS URL.
API_CLIENTS = frozenset({"mcp"})


def health_urls(settings: PigeonSettings) -> dict[str, str]:
    """Where each service answers /healthz and /readyz."""
    return {
        "api": f"http://{settings.api_host}:{settings.api_port}",
        "projector": f"http://{settings.projector_host}:{settings.projector_port}",
        "sender": f"http://{settings.sender_host}:{settings.sender_port}",
        "tracker": f"http://{settings.tracker_host}:{settings.tracker_port}",
        "imap-sync": f"http://{settings.imap_sync_host}:{settings.imap_sync_port}",
        "mcp": f"http://{settings.mcp_host}:{settings.mcp_port}",
    }
