"""Settings read from `PIGEON_*` environment variables: a base every process reads, the
shared base of the services that talk to NATS and PostgreSQL, and small groups of fields
that several services read. Each service's own class (`pigeon_api.settings.ApiSettings`,
`pigeon_sender.settings.SenderSettings`, ...) combines them with its own fields, so a
service reads only what it uses.

Each field's description is its entry in the configuration reference (README); a test
fails when one is missing. `load_settings(cls)` turns a validation error into one line
that names the variable, so a typo never ends in a traceback.
"""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path
from typing import Annotated, ClassVar, TypeVar

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pigeon_common.host_policy import HostPolicy, parse_networks

ENV_PREFIX = "PIGEON_"
SECRET_FILE_NAME = "secret_key"  # noqa: S105 - a file name
MIN_SECRET_LENGTH = 32
Port = Annotated[int, Field(ge=0, le=65535)]


class SettingsError(Exception):
    """Raised when a `PIGEON_*` variable is missing or invalid; `variable` names it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


class ProcessSettings(BaseSettings):
    """What every MC Pigeon process reads. `service` names the reader in the README's
    "read by" column."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)
    service: ClassVar[str] = ""

    log_level: str = Field(default="INFO", description="Python log level of every service.")

    def check(self) -> None:
        """Rules across fields, checked by `load_settings`; raises SettingsError."""


class SharedSettings(ProcessSettings):
    """What every service that talks to NATS and PostgreSQL reads."""

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
    secret_keys_previous: SecretStr | None = Field(
        default=None,
        description="Older server secrets (comma-separated, each at least 32 characters) "
        "still accepted while PIGEON_SECRET_KEY is rotated: tokens, tracking links and forms "
        "they signed keep verifying and mailbox passwords they encrypted keep decrypting. "
        "Nothing new is signed or encrypted with them. Unset: only the current key.",
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

    @property
    def embedded(self) -> bool:
        """True when neither server URL is set: `pigeon up` provides both."""
        return self.database_url is None and self.nats_url is None

    def secret(self) -> bytes:
        """The server secret; generated and stored under the data folder when unset."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        return _stored_secret(self.data_dir).encode()

    def keys(self) -> tuple[bytes, ...]:
        """The current secret, then each previous one: every signer and the secret box
        are built from these, so they sign and encrypt with the first and accept any."""
        keys = [self.secret(), *(key.encode() for key in self._previous_keys())]
        return tuple(dict.fromkeys(keys))  # a key listed twice is tried once

    def _previous_keys(self) -> list[str]:
        if self.secret_keys_previous is None:
            return []
        listed = self.secret_keys_previous.get_secret_value().split(",")
        return [key.strip() for key in listed if key.strip()]

    def require_servers(self) -> tuple[str, str]:
        """The (database_url, nats_url) a service connects to, or a SettingsError."""
        if self.database_url is None:
            raise SettingsError(f"{ENV_PREFIX}DATABASE_URL", "is not set")
        if self.nats_url is None:
            raise SettingsError(f"{ENV_PREFIX}NATS_URL", "is not set")
        return self.database_url, self.nats_url

    def check(self) -> None:
        if self.secret_key is not None:
            if len(self.secret_key.get_secret_value()) < MIN_SECRET_LENGTH:
                raise SettingsError(
                    f"{ENV_PREFIX}SECRET_KEY", f"must be at least {MIN_SECRET_LENGTH} characters"
                )
        elif not self.embedded:
            raise SettingsError(
                f"{ENV_PREFIX}SECRET_KEY",
                "must be set when PIGEON_DATABASE_URL or PIGEON_NATS_URL point at shared "
                "servers (every service needs the same key)",
            )
        for position, key in enumerate(self._previous_keys(), start=1):
            if len(key) < MIN_SECRET_LENGTH:
                # Named by position only: the value is never repeated.
                raise SettingsError(
                    f"{ENV_PREFIX}SECRET_KEYS_PREVIOUS",
                    f"key {position} must be at least {MIN_SECRET_LENGTH} characters",
                )


# Groups of fields read by more than one service; a service's class lists the groups it
# reads beside SharedSettings.


class MailServerAccess(BaseModel):
    """How SMTP and IMAP servers are reached (the API's connection test, the sender,
    imap-sync)."""

    tls_ca_file: Path | None = Field(
        default=None,
        description="Extra CA certificates (PEM) trusted for SMTP and IMAP servers, for "
        "mail servers with a private certificate authority.",
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

    def tls_context(self) -> ssl.SSLContext:
        """The context SMTP and IMAP connections verify servers with."""
        return ssl.create_default_context(
            cafile=str(self.tls_ca_file) if self.tls_ca_file else None
        )


class TrackingLinks(BaseModel):
    """Where the tracking links of rendered messages point (API, sender, MCP)."""

    public_base_url: AnyHttpUrl | None = Field(
        default=None,
        description="Public URL of the tracker (open pixel, click and unsubscribe links), "
        "the seed's CAMPAIGNS_PUBLIC_BASE_URL.",
    )

    @property
    def tracking_base(self) -> str | None:
        """`public_base_url` as tracking URLs start (no trailing slash), None when unset."""
        url = self.public_base_url
        return str(url).rstrip("/") if url else None


class SendDefaults(BaseModel):
    """How a send is split when the request does not say (the API, the sender's
    scheduler)."""

    batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=100, description="Recipients per send-chunk job."
    )
    sleep_between_batches_sec: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=0.0, description="Pause between two chunks of one campaign, in seconds."
    )


class ApiAddress(BaseModel):
    """Where the REST API listens (the API; the MCP gateway calls it there)."""

    api_host: str = Field(default="127.0.0.1", description="Address the REST API binds to.")
    api_port: Port = Field(default=8025, description="Port of the REST API.")


class TrackerAddress(BaseModel):
    """Where the tracker listens (the tracker; the MCP gateway names it when
    public_base_url is unset)."""

    tracker_host: str = Field(
        default="127.0.0.1",
        description="Address the tracker (open pixel, click redirect, unsubscribe) binds to.",
    )
    tracker_port: Port = Field(
        default=8028, description="Port of the tracker; it also answers /healthz and /readyz."
    )


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


S = TypeVar("S", bound=ProcessSettings)


def load_settings(cls: type[S]) -> S:
    """Read `cls` from the environment, or raise one SettingsError naming the variable."""
    try:
        settings = cls()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        value = error.get("input")
        shown = ""
        if isinstance(value, str | int | float) and "secret" not in field:
            shown = f" (got {value!r})"
        raise SettingsError(f"{ENV_PREFIX}{field.upper()}", f"{error['msg']}{shown}") from None
    settings.check()
    return settings
