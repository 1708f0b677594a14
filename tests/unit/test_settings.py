"""Settings from the environment: one clear line per mistake, secrets never echoed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pigeon_cli.settings import SERVICE_SETTINGS, AllSettings
from pigeon_common.settings import (
    MIN_SECRET_LENGTH,
    SECRET_FILE_NAME,
    SettingsError,
    load_settings,
)
from pigeon_mcp.settings import McpSettings
from pigeon_sender.settings import SenderSettings

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
        load_settings(AllSettings)
    # No chained pydantic error: a traceback would print it after the line.
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    return error


def test_defaults(clean_env: Path) -> None:
    settings = load_settings(AllSettings)
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
    settings = load_settings(AllSettings)
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
    settings = load_settings(AllSettings)
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
    settings = load_settings(AllSettings)
    assert not settings.embedded
    assert settings.require_servers() == ("postgresql://db/pigeon", "nats://n:4222")


def test_require_servers_names_the_missing_one(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(AllSettings).require_servers()
    assert caught.value.variable == "PIGEON_DATABASE_URL"
    monkeypatch.setenv("PIGEON_DATABASE_URL", "postgresql://db/pigeon")
    monkeypatch.setenv("PIGEON_SECRET_KEY", GOOD_SECRET)
    with pytest.raises(SettingsError) as caught:
        load_settings(AllSettings).require_servers()
    assert caught.value.variable == "PIGEON_NATS_URL"


def test_embedded_secret_is_generated_once_then_reused(clean_env: Path) -> None:
    path = clean_env / SECRET_FILE_NAME
    assert not path.exists()
    first = load_settings(AllSettings).secret()
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= MIN_SECRET_LENGTH
    assert path.read_text().strip().encode() == first
    # Another service, another process: the same key.
    assert load_settings(AllSettings).secret() == first
    assert AllSettings().secret() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_embedded_secrets_differ_between_data_folders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = load_settings(AllSettings).secret()
    monkeypatch.setenv("PIGEON_DATA_DIR", str(tmp_path / "other"))
    assert load_settings(AllSettings).secret() != first


def test_a_set_secret_wins_over_the_stored_one(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_settings(AllSettings).secret()
    monkeypatch.setenv("PIGEON_SECRET_KEY", GOOD_SECRET)
    assert load_settings(AllSettings).secret() == GOOD_SECRET.encode()


def test_a_stored_secret_that_is_too_short_is_refused(clean_env: Path) -> None:
    clean_env.mkdir(parents=True)
    (clean_env / SECRET_FILE_NAME).write_text("short\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(AllSettings).secret()
    assert caught.value.variable == "PIGEON_SECRET_KEY"
    assert "short\n" not in str(caught.value)


def test_previous_keys_follow_the_current_one(monkeypatch: pytest.MonkeyPatch) -> None:
    old, older = "o" * MIN_SECRET_LENGTH, "p" * 40
    monkeypatch.setenv("PIGEON_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("PIGEON_SECRET_KEYS_PREVIOUS", f" {old}, {older},,{old}")
    settings = load_settings(AllSettings)
    assert settings.keys() == (GOOD_SECRET.encode(), old.encode(), older.encode())
    assert old not in repr(settings) and old not in str(settings)


def test_without_previous_keys_there_is_only_the_current_one(clean_env: Path) -> None:
    settings = load_settings(AllSettings)
    assert settings.keys() == (settings.secret(),)  # the generated one, embedded
    with_empty = AllSettings(secret_keys_previous="")
    assert with_empty.keys() == (settings.secret(),)


def test_previous_keys_with_the_stored_secret(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Embedded: the stored secret stays current, a listed older key is accepted too."""
    monkeypatch.setenv("PIGEON_SECRET_KEYS_PREVIOUS", GOOD_SECRET)
    settings = load_settings(AllSettings)
    assert settings.keys() == (settings.secret(), GOOD_SECRET.encode())
    assert settings.secret() != GOOD_SECRET.encode()


def test_a_short_previous_key_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = "old-but-private-Zq9"
    error = _refused(
        monkeypatch,
        PIGEON_SECRET_KEY=GOOD_SECRET,
        PIGEON_SECRET_KEYS_PREVIOUS=f"{'o' * 40},{short}",
    )
    assert error.variable == "PIGEON_SECRET_KEYS_PREVIOUS"
    assert str(error) == "PIGEON_SECRET_KEYS_PREVIOUS: key 2 must be at least 32 characters"
    assert short not in repr(error) and "o" * 40 not in str(error)


SHARED = {
    "log_level",
    "data_dir",
    "database_url",
    "nats_url",
    "secret_key",
    "secret_keys_previous",
    "jetstream_replicas",
    "publish_retry_sec",
}
MAIL_SERVERS = {"tls_ca_file", "mailbox_hosts_deny", "mailbox_hosts_loopback_only"}
OWN_FIELDS = {
    "api": SHARED
    | MAIL_SERVERS
    | {"public_base_url", "batch_size", "sleep_between_batches_sec", "api_host", "api_port"}
    | {"read_your_writes_timeout_sec", "max_upload_bytes", "max_json_bytes"}
    | {"login_account_failures", "login_client_failures", "login_window_sec"},
    "projector": SHARED | {"projector_host", "projector_port", "projector_batch_size"},
    "sender": SHARED
    | MAIL_SERVERS
    | {"public_base_url", "batch_size", "sleep_between_batches_sec"}
    | {"sender_host", "sender_port", "sender_concurrency", "job_ack_wait_sec"},
    "tracker": SHARED
    | {"tracker_host", "tracker_port", "tracker_workers", "tracker_trusted_proxies"}
    | {"tracker_events_per_minute"},
    "imap-sync": SHARED
    | MAIL_SERVERS
    | {"imap_sync_host", "imap_sync_port", "imap_sync_interval", "imap_sync_idle"}
    | {"imap_processed_folder", "soft_bounce_limit", "soft_bounce_window_days"},
    "mcp": {"log_level", "public_base_url", "api_host", "api_port", "tracker_host"}
    | {"tracker_port", "mcp_host", "mcp_port", "api_url"},
}


@pytest.mark.parametrize("service", sorted(OWN_FIELDS))
def test_each_service_reads_only_its_own_fields(service: str) -> None:
    assert set(SERVICE_SETTINGS[service].model_fields) == OWN_FIELDS[service]


def test_the_cli_reads_every_field_and_is_every_service() -> None:
    every = set().union(*OWN_FIELDS.values())
    assert set(AllSettings.model_fields) == every | {"admin_email"}
    settings = AllSettings()
    for cls in SERVICE_SETTINGS.values():
        assert isinstance(settings, cls)


@pytest.mark.parametrize(
    ("variable", "reader"),
    [
        ("PIGEON_IMAP_SYNC_PORT", "imap-sync"),
        ("PIGEON_TRACKER_WORKERS", "tracker"),
        ("PIGEON_LOGIN_WINDOW_SEC", "api"),
        ("PIGEON_SENDER_CONCURRENCY", "sender"),
        ("PIGEON_PROJECTOR_BATCH_SIZE", "projector"),
        ("PIGEON_MCP_PORT", "mcp"),
    ],
)
def test_a_bad_value_stops_only_the_services_that_read_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, reader: str
) -> None:
    monkeypatch.setenv(variable, "not-a-number")
    for service, cls in SERVICE_SETTINGS.items():
        if service == reader:
            with pytest.raises(SettingsError) as caught:
                load_settings(cls)
            assert caught.value.variable == variable
        else:
            load_settings(cls)  # reads no such field: the value is not its concern
    with pytest.raises(SettingsError):
        load_settings(AllSettings)


def test_the_mcp_gateway_needs_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # It reads no server URL: set ones (for the other services) ask it for no secret.
    monkeypatch.setenv("PIGEON_DATABASE_URL", "postgresql://db/pigeon")
    monkeypatch.setenv("PIGEON_API_URL", "http://api.internal:8025/")
    settings = load_settings(McpSettings)
    assert settings.api_base == "http://api.internal:8025"
    assert not hasattr(settings, "database_url") and not hasattr(settings, "secret")
    with pytest.raises(SettingsError):
        load_settings(SenderSettings)
