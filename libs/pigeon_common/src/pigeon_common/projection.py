"""Events to read-model rows: the pure part (`writes_for`) apart from the I/O part.

`writes_for` turns one stored event into the SQL writes that apply it; it touches no
database, so every event's effect is tested without a server. The projector (in
`projector.py`) runs these writes in batches, one transaction per batch together with
the stream-sequence checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pigeon_common import events as ev
from pigeon_common.queries import Queries

SQL = Queries.from_package("pigeon_common", "projection.sql")

# Tables a rebuild empties and refills from the stream (API-owned tables are not here).
READ_MODEL_TABLES: tuple[str, ...] = ("mailboxes", "campaigns", "recipients", "projection_skipped")


@dataclass(frozen=True, slots=True)
class Write:
    """One parameterised statement; consecutive writes of one statement run as a batch."""

    sql: str
    args: tuple[Any, ...]


def writes_for(seq: int, envelope: ev.Envelope) -> list[Write]:
    """The writes that apply one event (raises UnknownEventError for an unknown type)."""
    event = ev.payload_of(envelope)
    at = envelope.occurred_at
    match event:
        case ev.MailboxCreated() | ev.MailboxUpdated():
            return [_upsert_mailbox(event.mailbox_id, event.config, at, seq)]
        case ev.MailboxDeleted():
            return [Write(SQL.delete_mailbox, (event.mailbox_id,))]
        case ev.CampaignCreated():
            return [
                Write(
                    SQL.insert_campaign,
                    (
                        event.campaign_id,
                        event.name,
                        event.subject,
                        event.template_markdown,
                        event.mailbox_id,
                        at,
                        seq,
                    ),
                )
            ]
        case ev.CampaignUpdated():
            return [
                Write(
                    SQL.update_campaign,
                    (
                        event.campaign_id,
                        event.name,
                        event.subject,
                        event.template_markdown,
                        event.mailbox_id,
                        at,
                        seq,
                    ),
                )
            ]
        case ev.CampaignDeleted():
            return [
                Write(SQL.delete_campaign_recipients, (event.campaign_id,)),
                Write(SQL.delete_campaign, (event.campaign_id,)),
            ]
        case ev.RecipientsAdded():
            return [
                Write(
                    SQL.upsert_recipient,
                    (event.campaign_id, r.recipient_id, r.email, r.name, r.attributes, at),
                )
                for r in event.recipients
            ]
        case ev.RecipientDeleted():
            return [Write(SQL.delete_recipient, (event.campaign_id, event.recipient_id))]
    raise ev.UnknownEventError(envelope.type, envelope.schema_version)


def _upsert_mailbox(mailbox_id: Any, config: ev.MailboxConfig, at: datetime, seq: int) -> Write:
    return Write(
        SQL.upsert_mailbox,
        (
            mailbox_id,
            config.name,
            config.from_name,
            config.from_address,
            config.smtp.host,
            config.smtp.port,
            config.smtp.security,
            config.smtp.username,
            config.imap.host,
            config.imap.port,
            config.imap.security,
            config.imap.username,
            config.sent_folder,
            config.bounce_folder,
            config.rate_per_second,
            config.rate_per_hour,
            config.rate_per_day,
            at,
            seq,
        ),
    )


def group_writes(writes: list[Write]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Consecutive writes of the same statement, merged so each group is one executemany."""
    groups: list[tuple[str, list[tuple[Any, ...]]]] = []
    for write in writes:
        if groups and groups[-1][0] == write.sql:
            groups[-1][1].append(write.args)
        else:
            groups.append((write.sql, [write.args]))
    return groups
