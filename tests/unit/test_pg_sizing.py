"""The embedded PostgreSQL's memory settings, sized from the machine."""

from __future__ import annotations

from pigeon_embedded.pg_sizing import MB, sized_settings


def _settings(memory: int) -> dict[str, str]:
    return dict(setting.split("=", 1) for setting in sized_settings(memory))


def test_an_eighth_of_the_memory_goes_to_shared_buffers() -> None:
    settings = _settings(8 * 1024 * MB)
    assert settings["shared_buffers"] == "1024MB"
    assert settings["maintenance_work_mem"] == "256MB"


def test_shared_buffers_never_go_below_postgres_default_nor_above_the_cap() -> None:
    assert _settings(512 * MB)["shared_buffers"] == "128MB"
    assert _settings(512 * MB)["maintenance_work_mem"] == "64MB"
    assert _settings(256 * 1024 * MB)["shared_buffers"] == "2048MB"


def test_checkpoints_are_spaced_for_large_campaigns() -> None:
    settings = _settings(4 * 1024 * MB)
    assert settings["max_wal_size"] == "4GB"
    assert settings["checkpoint_timeout"] == "15min"
