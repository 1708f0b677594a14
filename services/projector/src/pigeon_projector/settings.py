"""The projector's settings: the shared base and its own."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from pigeon_common.settings import Port, SharedSettings


class ProjectorSettings(SharedSettings):
    """What the projector reads."""

    service: ClassVar[str] = "projector"

    projector_host: str = Field(
        default="127.0.0.1", description="Address of the projector's health endpoints."
    )
    projector_port: Port = Field(
        default=8026, description="Port of the projector's /healthz and /readyz."
    )
    projector_batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=1000, description="Events the projector applies in one transaction at most."
    )
