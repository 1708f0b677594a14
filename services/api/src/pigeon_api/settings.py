"""The REST API's settings: the shared base, the groups it reads, and its own limits."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from pigeon_common.settings import (
    ApiAddress,
    MailServerAccess,
    SendDefaults,
    SharedSettings,
    TrackingLinks,
)


class ApiSettings(SharedSettings, MailServerAccess, TrackingLinks, SendDefaults, ApiAddress):
    """What the REST API (and its admin UI) reads."""

    service: ClassVar[str] = "api"

    read_your_writes_timeout_sec: Annotated[float, Field(gt=0, le=120)] = Field(
        default=10.0,
        description="How long a write request waits for the projector to reach its event "
        "before answering 202 instead of the stored resource.",
    )
    max_upload_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=64 * 1024 * 1024, description="Largest CSV upload accepted, in bytes."
    )
    max_json_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=8 * 1024 * 1024, description="Largest JSON request body accepted, in bytes."
    )
    login_account_failures: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=10,
        description="Failed sign-ins of one email within login_window_sec after which that "
        "email is refused (429) until the oldest failure leaves the window.",
    )
    login_client_failures: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=50,
        description="Failed sign-ins from one client address within login_window_sec "
        "after which that address is refused (429), whatever the email.",
    )
    login_window_sec: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=300.0,
        description="Sliding window of the sign-in throttle, in seconds (counted in each "
        "API process on its own).",
    )
