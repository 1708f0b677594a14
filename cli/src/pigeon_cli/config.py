"""Settings for CLI commands: the environment, else the URLs of a running `pigeon up`."""

from __future__ import annotations

from typing import TypeVar

import typer

from pigeon_cli import runtime_file
from pigeon_common.settings import ProcessSettings, SettingsError, SharedSettings, load_settings

S = TypeVar("S", bound=ProcessSettings)
C = TypeVar("C", bound=SharedSettings)


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def settings(cls: type[S]) -> S:
    """`cls` from the environment, or exit with the one line naming the variable."""
    try:
        return load_settings(cls)
    except SettingsError as exc:
        raise fail(str(exc)) from None


def connected_settings(cls: type[C]) -> C:
    """`cls` with both server URLs filled in, or a clear error."""
    base = settings(cls)
    if base.database_url is not None and base.nats_url is not None:
        return base
    running = runtime_file.read(base.data_dir)
    if running is None:
        raise fail(
            "no servers: start `pigeon up` (embedded servers) or set PIGEON_DATABASE_URL and "
            "PIGEON_NATS_URL"
        )
    return base.model_copy(
        update={
            "database_url": base.database_url or running["database_url"],
            "nats_url": base.nats_url or running["nats_url"],
        }
    )
