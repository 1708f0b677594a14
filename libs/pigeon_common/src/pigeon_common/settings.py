"""Settings shared by every service, read from `PIGEON_*` environment variables.

Each field's description is its entry in the configuration reference (README); a test
fails when one is missing. `load_settings()` turns a validation error into one line that
names the variable, so a typo never ends in a traceback.
"""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pigeon_common.host_policy import HostPolicy, parse_networks

ENV_PREFIX = "PIGEON_"
SECRET_FILE_NAME = "secret_key"  # noqa: S105 - a file name
MIN_SECRET_LENGTH = 32


class SettingsError(Exception):
    """Raised when a `PIGEON_*` variable is missing or invalid; `variable` names it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


class PigeonSettings(BaseSettings):
    """Configuration common to all services."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    data_dir: Path = Field(
        default=Path(".pigeon"),
        description="Folder for the embedded servers' data and the generated secret key.",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:port/db). Unset: `pigeon up` "
        "starts an embedded PostgreSQL under the data folder.",
    )
    nats_url: str | None = Field(
        default=None,
        description="NATS server URL(s), comma-separated (nats://host:4222). Unset: `pigeon up` "
        "starts an embedded nats-server with JetStream under the data folder.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Server secret (at least 32 characters) for signing tokens and encrypting "
        "mailbox passwords. Unset: generated once and kept in <data_dir>/secret_key (only "
        "with the embedded servers; required when the server URLs are set).",
    )
    jetstream_replicas: Annotated[int, Field(ge=1, le=5)] = Field(
        default=1,
        description="Replicas of each JetStream stream (3 on a 3-node NATS cluster).",
    )
    publish_retry_sec: Annotated[float, Field(ge=0, le=120)] = Field(
        default=10.0,
        description="How long a refused or unanswered publish to JetStream (a stream leader "
        "being elected on a NATS cluster, a server switch) is retried, with backoff and the "
        "same message id, before the API or tracker answers 503 and a job is retried later.",
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="Extra CA certificates (PEM) trusted for SMTP and IMAP servers, for "
        "mail servers with a private certificate authority.",
    )
    public_base_url: AnyHttpUrl | None = Field(
        default=None,
        description="Public URL of the tracker (open pixel, click and unsubscribe links), "
        "the seed's CAMPAIGNS_PUBLIC_BASE_URL.",
    )
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=100, description="Recipients per send-chunk job."
    )
    sleep_between_batches_sec: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=0.0, description="Pause between two chunks of one campaign, in seconds."
    )
    api_host: str = Field(default="127.0.0.1", description="Address the REST API binds to.")
    api_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=8025, description="Port of the REST API."
    )
    projector_host: str = Field(
        default="127.0.0.1", description="Address of the projector's health endpoints."
    )
    projector_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=8026, description="Port of the projector's /healthz and /readyz."
    )
    sender_host: str = Field(
        default="127.0.0.1", description="Address of the sender's health endpoints."
    )
    sender_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=8027, description="Port of the sender's /healthz and /readyz."
    )
    tracker_host: str = Field(
        default="127.0.0.1",
        description="Address the tracker (open pixel, click redirect, unsubscribe) binds to.",
    )
    tracker_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=8028, description="Port of the tracker; it also answers /healthz and /readyz."
    )
    tracker_workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=2,
        description="Tracker worker processes sharing the port (SO_REUSEPORT); one per core.",
    )
    tracker_trusted_proxies: Annotated[int, Field(ge=0, le=10)] = Field(
        default=0,
        description="Proxies (CDN, load balancer) in front of the tracker whose "
        "X-Forwarded-For entries are trusted to name the client; 0 uses the peer address.",
    )
    tracker_events_per_minute: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=10,
        description="Opens of one message, or clicks of one link of one message, recorded "
        "per minute by each tracker worker; further fetches that minute are answered "
        "(200/302) but not stored. 0 records every fetch.",
    )
    imap_sync_host: str = Field(
        default="127.0.0.1", description="Address of imap-sync's health endpoints."
    )
    imap_sync_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=8029, description="Port of imap-sync's /healthz and /readyz."
    )
    imap_sync_interval: Annotated[float, Field(ge=1, le=86_400)] = Field(
        default=60.0,
        description="Seconds between two syncs of a mailbox's bounce folder when the IMAP "
        "server has no IDLE (with IDLE, new mail is read as it arrives and this is the "
        "longest wait between full checks).",
    )
    imap_sync_idle: bool = Field(
        default=True, description="Use IMAP IDLE where the server offers it."
    )
    imap_processed_folder: str = Field(
        default="",
        description="Folder that processed bounce-folder mail is moved to (created if "
        "missing); empty leaves it in place. Mail is never deleted.",
    )
    mcp_host: str = Field(
        default="127.0.0.1", description="Address the MCP gateway (streamable HTTP) binds to."
    )
    mcp_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=8030, description="Port of the MCP gateway; it serves /mcp, /healthz and /readyz."
    )
    api_url: AnyHttpUrl | None = Field(
        default=None,
        description="Base URL of the REST API that the MCP gateway and `pigeon mcp` call (the "
        "part before /api/v1). Unset: http://<api_host>:<api_port>.",
    )
    soft_bounce_limit: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3,
        description="Full-mailbox or given-up temporary bounces of one address (on "
        "different messages of one mailbox, within soft_bounce_window_days) after which it "
        "is suppressed; policy, spam, content and size rejections never count.",
    )
    soft_bounce_window_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=30, description="Days over which soft bounces are counted."
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
    admin_email: str = Field(
        default="admin@example.com",
        description="Login of the first administrator that `pigeon up` creates on an empty "
        "database.",
    )
    mailbox_hosts_deny: str = Field(
        default="",
        description="Mailbox servers (SMTP and IMAP) refused when an address their host "
        "name resolves to is in one of these comma-separated CIDR ranges (10.0.0.0/8, "
        "fd00::/8); checked when connecting, after DNS, and at save time for a host given "
        "as an IP address. Empty: none refused.",
    )
    mailbox_hosts_loopback_only: bool = Field(
        default=False,
        description="Refuse every mailbox server whose address is not a loopback one "
        "(127.0.0.0/8, ::1): for test and fuzz runs that must never connect off the machine. "
        "Host names other than localhost are refused without being resolved, so that no "
        "DNS query leaves the machine either.",
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
    log_level: str = Field(default="INFO", description="Python log level of every service.")
    projector_batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=1000, description="Events the projector applies in one transaction at most."
    )

    @field_validator("mailbox_hosts_deny")
    @classmethod
    def _cidr_list(cls, value: str) -> str:
        parse_networks(value)  # a bad entry is a ValueError naming it
        return value

    def mailbox_host_policy(self) -> HostPolicy:
        """Which mailbox server addresses SMTP and IMAP connections may go to."""
        return HostPolicy(
            deny=parse_networks(self.mailbox_hosts_deny),
            loopback_only=self.mailbox_hosts_loopback_only,
        )

    @property
    def tracking_base(self) -> str | None:
        """`public_base_url` as tracking URLs start (no trailing slash), None when unset."""
        url = self.public_base_url
        return str(url).rstrip("/") if url else None

    @property
    def api_base(self) -> str:
        """Where the REST API answers (no trailing slash, without /api/v1)."""
        if self.api_url is not None:
            return str(self.api_url).rstrip("/")
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def embedded(self) -> bool:
        """True when neither server URL is set: `pigeon up` provides both."""
        return self.database_url is None and self.nats_url is None

    def secret(self) -> bytes:
        """The server secret; generated and stored under the data folder when unset."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        return _stored_secret(self.data_dir).encode()

    def tls_context(self) -> ssl.SSLContext:
        """The context SMTP and IMAP connections verify servers with."""
        return ssl.create_default_context(
            cafile=str(self.tls_ca_file) if self.tls_ca_file else None
        )

    def require_servers(self) -> tuple[str, str]:
        """The (database_url, nats_url) a service connects to, or a SettingsError."""
        if self.database_url is None:
            raise SettingsError(f"{ENV_PREFIX}DATABASE_URL", "is not set")
        if self.nats_url is None:
            raise SettingsError(f"{ENV_PREFIX}NATS_URL", "is not set")
        return self.database_url, self.nats_url


def _stored_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        value = path.read_text().strip()
        if len(value) < MIN_SECRET_LENGTH:
            raise SettingsError(f"{ENV_PREFIX}SECRET_KEY", f"{path} holds a too-short secret")
        return value
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def load_settings() -> PigeonSettings:
    """Read the settings from the environment, or raise one SettingsError naming the variable."""
    try:
        settings = PigeonSettings()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        value = error.get("input")
        shown = ""
        if isinstance(value, str | int | float) and "secret" not in field:
            shown = f" (got {value!r})"
        raise SettingsError(f"{ENV_PREFIX}{field.upper()}", f"{error['msg']}{shown}") from None
    if settings.secret_key is not None:
        if len(settings.secret_key.get_secret_value()) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"{ENV_PREFIX}SECRET_KEY", f"must be at least {MIN_SECRET_LENGTH} characters"
            )
    elif not settings.embedded:
        raise SettingsError(
            f"{ENV_PREFIX}SECRET_KEY",
            "must be set when PIGEON_DATABASE_URL or PIGEON_NATS_URL point at shared servers "
            "(every service needs the same key)",
        )
    return settings
