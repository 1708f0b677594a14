"""A campaign as the sender holds it: compiled once, with its mailbox's settings."""

from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

from pigeon_common.events import Security
from pigeon_common.host_policy import ALLOW_ALL, HostPolicy
from pigeon_common.render import CompiledCampaign, TrackingSigner, compile_campaign
from pigeon_common.secrets_box import SecretBox, SecretBoxError
from pigeon_common.sending import NotSendableError, spec_of
from pigeon_common.smtp import SmtpEndpoint
from pigeon_common.validation import InvalidAddressError
from pigeon_sender.ratelimit import Limits


@dataclass(frozen=True)
class ImapEndpoint:
    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)  # never in a log line or traceback
    policy: HostPolicy = ALLOW_ALL  # which resolved addresses may be connected to


@dataclass(frozen=True)
class SendingCampaign:
    """Everything needed to send one campaign's chunks."""

    id: uuid.UUID
    status: str
    run_id: uuid.UUID | None
    run_chunks: int
    sleep_between_batches_sec: float
    mailbox_id: uuid.UUID
    smtp: SmtpEndpoint
    imap: ImapEndpoint
    sent_folder: str
    append_to_sent: str
    limits: Limits
    compiled: CompiledCampaign
    version: Any


def compiled_version(row: Any) -> tuple[Any, Any, Any]:
    """What a cached SendingCampaign depends on: the campaign, its mailbox and the
    mailbox's passwords (a new SMTP password must be used at once)."""
    return (row["updated_at"], row["mailbox_updated_at"], row["secrets_updated_at"])


def sending_campaign(
    row: Any,
    box: SecretBox,
    signer: TrackingSigner,
    public_base_url: str | None,
    tls_context: ssl.SSLContext | None = None,
    policy: HostPolicy = ALLOW_ALL,
) -> SendingCampaign:
    """The campaign ready to send, or NotSendableError saying why it never can be as it
    stands (no mailbox, passwords this server cannot decrypt, a bad sender address)."""
    if row["mailbox_id"] is None or row["smtp_host"] is None:
        raise NotSendableError(f"campaign {row['id']} has no mailbox")
    if row["smtp_username"] and row["smtp_password"] is None:
        # Dropped when the mailbox's SMTP server or login changed without a new one.
        raise NotSendableError("the mailbox has no SMTP password for its server: set it again")
    try:
        return _sending_campaign(row, box, signer, public_base_url, tls_context, policy)
    except SecretBoxError:
        raise NotSendableError(
            "the mailbox's passwords cannot be decrypted with this server's secret key:"
            " set them again"
        ) from None
    except InvalidAddressError as exc:
        raise NotSendableError(f"the mailbox's sender address: {exc}") from None


def _sending_campaign(
    row: Any,
    box: SecretBox,
    signer: TrackingSigner,
    public_base_url: str | None,
    tls_context: ssl.SSLContext | None,
    policy: HostPolicy,
) -> SendingCampaign:
    spec = spec_of(row, public_base_url)
    return SendingCampaign(
        id=row["id"],
        status=row["status"],
        run_id=row["run_id"],
        run_chunks=row["run_chunks"] or 0,
        sleep_between_batches_sec=row["sleep_between_batches_sec"] or 0.0,
        mailbox_id=row["mailbox_id"],
        smtp=SmtpEndpoint(
            host=row["smtp_host"],
            port=row["smtp_port"],
            security=row["smtp_security"],
            username=row["smtp_username"],
            password=box.decrypt(row["smtp_password"]),
            tls_context=tls_context,
            policy=policy,
        ),
        imap=ImapEndpoint(
            host=row["imap_host"],
            port=row["imap_port"],
            security=cast(Security, row["imap_security"]),
            username=row["imap_username"],
            password=box.decrypt(row["imap_password"]),
            policy=policy,
        ),
        sent_folder=row["sent_folder"],
        append_to_sent=row["append_to_sent"],
        limits=Limits(row["rate_per_second"], row["rate_per_hour"], row["rate_per_day"]),
        compiled=compile_campaign(spec, signer),
        version=compiled_version(row),
    )
