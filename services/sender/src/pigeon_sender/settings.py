"""The sender's settings: the shared base, the groups it reads, and its own."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from pigeon_common.settings import (
    MailServerAccess,
    Port,
    SendDefaults,
    SharedSettings,
    TrackingLinks,
)


class SenderSettings(SharedSettings, MailServerAccess, TrackingLinks, SendDefaults):
    """What the sender reads."""

    service: ClassVar[str] = "sender"

    sender_host: str = Field(
        default="127.0.0.1", description="Address of the sender's health endpoints."
    )
    sender_port: Port = Field(
        default=8027, description="Port of the sender's /healthz and /readyz."
    )
    sender_concurrency: Annotated[int, Field(ge=1, le=64)] = Field(
        default=4,
        description="Chunk jobs one sender process works on at once (one SMTP connection each).",
    )
    job_ack_wait_sec: Annotated[float, Field(ge=1, le=3600)] = Field(
        default=6.0,
        description="Seconds a send-chunk job may go without a sign of life before JetStream "
        "hands it to another sender (a running job says it is alive every third of it; the "
        "sender consumer is updated to it at start).",
    )
