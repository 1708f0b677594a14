"""Every service's settings in one view, for `pigeon up` and the CLI's own commands.

`pigeon up` passes the environment on to the services it starts and each child reads its
own class; the CLI itself needs fields of several (addresses, secrets, the servers).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from pigeon_api.settings import ApiSettings
from pigeon_common.settings import ProcessSettings
from pigeon_imap_sync.settings import ImapSyncSettings
from pigeon_mcp.settings import McpSettings
from pigeon_projector.settings import ProjectorSettings
from pigeon_sender.settings import SenderSettings
from pigeon_tracker.settings import TrackerSettings

# Each service's class, by the name `pigeon serve NAME` knows it by.
SERVICE_SETTINGS: dict[str, type[ProcessSettings]] = {
    cls.service: cls
    for cls in (
        ApiSettings,
        ProjectorSettings,
        SenderSettings,
        TrackerSettings,
        ImapSyncSettings,
        McpSettings,
    )
}


class AllSettings(
    ApiSettings,
    ProjectorSettings,
    SenderSettings,
    TrackerSettings,
    ImapSyncSettings,
    McpSettings,
):
    """Every service's fields, and the CLI's own; an instance is also each service's."""

    service: ClassVar[str] = "cli"

    admin_email: str = Field(
        default="admin@example.com",
        description="Login of the first administrator that `pigeon up` creates on an empty "
        "database.",
    )


def read_by(field: str) -> str:
    """Who reads a setting, as the configuration tables' "read by" column says it: the
    services whose class has the field ("every service" when all do), else the CLI."""
    readers = [name for name, cls in SERVICE_SETTINGS.items() if field in cls.model_fields]
    if len(readers) == len(SERVICE_SETTINGS):
        return "every service"
    return ", ".join(readers) if readers else "`pigeon` CLI"
