"""Settings from the environment: one clear line per mistake, secrets never echoed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pigeon_common.settings import (
    MIN_SECRET_LENGTH,
    SECRET_FILE_NAME,
    PigeonSettings,
    SettingsError,
    load_settings,
)

GOOD_SECRET = "k" * MIN_SECRET_LENGTH


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No PIGEON_* variable from the outside; the data folder is a fresh temporary one."""
    for name in list(os.environ):
        if name.startswith("PIGEON_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("PIGEON_DATA_DIR", str(data_dir))
    return data_dir


def _refused(monkeypatch: pytest.MonkeyPatch, **env: str) -> SettingsError:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    # No chained pydantic error: a traceback would print it after the line.
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    return error


def test_defaults(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.data_dir == clean_env
    assert settings.embedded
    assert settings.batch_size == 100
    assert settings.sleep_between_batches_sec == 0.0
    assert settings.secret_key is None
    assert settings.database_url is None and settings.nats_url is None


def test_values_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIGEON_BATCH_SIZE", "250")
    monkeypatch.setenv("PIGEON_API_PORT", "0")
    monkeypatch.setenv("PIGEON_SLEEP_BETWEEN_BATCHES_SEC", "1.5")
    monkeypatch.setenv("PIGEON_PUBLIC_BASE_URL", "https://mail.example.org/")
    settings = load_settings()
    assert (settings.batch_size, settings.api_port) == (250, 0)
    assert settings.sleep_between_batches_sec == 1.5
    assert str(settings.public_base_url) == "https://mail.example.org/"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PIGEON_BATCH_SIZE", "abc"),
        ("PIGEON_BATCH_SIZE", "0"),
        ("PIGEON_BATCH_SIZE", "10001"),
        ("PIGEON_BATCH_SIZE", "1\n2"),
        ("PIGEON_API_PORT", "70000"),
        ("PIGEON_API_PORT", "-1"),
        ("PIGEON_PROJECTOR_PORT", "http"),
        ("PIGEON_SLEEP_BETWEEN_BATCHES_SEC", "-1"),
        ("PIGEON_READ_YOUR_WRITES_TIMEOUT_SEC", "0"),
        ("PIGEON_MAX_UPLOAD_BYTES", "10"),
        ("PIGEON_PUBLIC_BASE_URL", "not a url"),
        ("PIGEON_PUBLIC_BASE_URL", "ftp://example.org/"),
    ],
)
def test_invalid_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    error = _refused(monkeypatch, **{variable: value})
    assert error.variable == variable
    message = str(error)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message and "\r" not in message
    assert "Traceback" not in message and "pydantic" not in message.lower()


def test_too_short_secret_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    short = "tiny-but-private-Xq7"
    error = _refused(monkeypatch, PIGEON_SECRET_KEY=short)
    assert error.variable == "PIGEON_SECRET_KEY"
    assert short not in str(error) and short not in repr(error) and short not in error.message
    assert "\n" not in str(error)


def test_secret_of_minimum_length_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIGEON_SECRET_KEY", GOOD_SECRET)
    settings = load_settings()
    assert settings.secret() == GOOD_SECRET.encode()
    assert GOOD_SECRET not in repr(settings) and GOOD_SECRET not in str(settings)


@pytest.mark.parametrize(
    "server",
    [("PIGEON_DATABASE_URL", "postgresql://u:p@db/pigeon"), ("PIGEON_NATS_URL", "nats://n")],
)
def test_shared_servers_need_a_secret(
    monkeypatch: pytest.MonkeyPatch, server: tuple[str, str]
) -> None:
    error = _refused(monkeypatch, **{server[0]: server[1]})
    assert error.variable == "PIGEON_SECRET_KEY"
    assert str(error).startswith("PIGEON_SECRET_KEY: ")
    assert "\n" not in str(error)
    assert "u:p@db" not in str(error)


def test_shared_servers_with_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIGEON_DATABASE_URL", "postgresql://db/pigeon")
    monkeypatch.setenv("PIGEON_NATS_URL", "nats://n:4222")
    monkeypatch.setenv("PIGEON_SECRET_KEY", GOOD_SECRET)
    settings = load_settings()
    assert not settings.embedded
    assert settings.require_servers() == ("postgresql://db/pigeon", "nats://n:4222")


def test_require_servers_names_the_missing_one(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings().require_servers()
    assert caught.value.variable == "PIGEON_DATABASE_URL"
    monkeypatch.setenv("PIGEON_DATABASE_URL", "postgresql://db/pigeon")
    monkeypatch.setenv("PIGEON_SECRET_KEY", GOOD_SECRET)
    with pytest.raises(SettingsError) as caught:
        load_settings().require_servers()
    assert caught.value.variable == "PIGEON_NATS_URL"


def test_embedded_secret_is_generated_once_then_reused(clean_env: Path) -> None:
    path = clean_env / SECRET_FILE_NAME
    assert not path.exists()
    first = load_settings().secret()
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= MIN_SECRET_LENGTH
    assert path.read_text().strip().encode() == first
    # Another service, another process: the same key.
    assert load_settings().secret() == first
    assert PigeonSettings().secret() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_embedded_secrets_differ_between_data_folders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = load_settings().secret()
    monkeypatch.setenv("PIGEON_DATA_DIR", str(tmp_path / "other"))
    assert load_settings().secret() != first


def test_a_set_secret_wins_over_the_stored_one(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_settings().secret()
    monkeypatch.setenv("PIGEON_SECRET_KEY", GOOD_SECRET)
    assert load_settings().secret() == GOOD_SECRET.encode()


def test_a_stored_secret_that_is_too_short_is_refused(clean_env: Path) -> None:
    clean_env.mkdir(parents=True)
    (clean_env / SECRET_FILE_NAME).write_text("short\n")
    with pytest.raises(SettingsError) as caught:
        load_settings().secret()
    assert caught.value.variable == "PIGEON_SECRET_KEY"
    assert "short\n" not in str(caught.value)
