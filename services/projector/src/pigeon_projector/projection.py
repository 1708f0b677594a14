"""Events to read-model rows: the pure part (`writes_for`) apart from the I/O part.

`writes_for` turns one stored event into the SQL writes that apply it; it touches no
database, so every event's effect is tested without a server. The projector (in
`projector.py`) runs these writes in batches, one transaction per batch together with
the stream-sequence checkpoint.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from pigeon_common import events as ev
from pigeon_common.domain.status import CampaignStatus, MessageStatus
from pigeon_common.queries import Queries
from pigeon_common.read_models import NIL_MAILBOX
from pigeon_common.validation import address_key

SQL = Queries.from_package("pigeon_projector", "projection.sql")

# Tables a rebuild empties and refills from the stream (API-owned tables are not here).
READ_MODEL_TABLES: tuple[str, ...] = (
    "mailboxes",
    "mailbox_shares",
    "campaigns",
    "campaign_shares",
    "recipients",
    "campaign_links",
    "messages",
    "suppressions",
    "open_events",
    "link_clicks",
    "unsubscribes",
    "delivery_events",
    "inbound_skipped",
    "projection_skipped",
    # pigeon_projector.message_states (migration 0008)
    "message_states",
    "campaign_counters",
)
OUTCOME_RANK = {
    MessageStatus.UNKNOWN: 1,
    MessageStatus.SUPPRESSED: 2,
    MessageStatus.FAILED: 3,
    MessageStatus.SENT: 4,
}


@dataclass(frozen=True, slots=True)
class Write:
    """One parameterised statement; consecutive writes of one statement run as a batch."""

    sql: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class AddedRecipients:
    """The rows one RecipientsAdded upserts, as columns: a thousand recipients make one
    write, not a thousand (`Write(SQL.upsert_recipients, (AddedRecipients(...),))`, folded
    with the run's other recipient writes by fold_recipient_writes)."""

    campaign_id: uuid.UUID
    ids: list[uuid.UUID]
    emails: list[str]
    names: list[str]
    attributes: list[dict[str, Any]]
    at: datetime

    def rows(self) -> list[tuple[Any, ...]]:
        """As upsert-recipient's arguments, one tuple per recipient."""
        c, at = self.campaign_id, self.at
        return [
            (c, i, e, n, a, at)
            for i, e, n, a in zip(self.ids, self.emails, self.names, self.attributes, strict=True)
        ]


def added_recipients(write: Write) -> AddedRecipients | None:
    return write.args[0] if write.sql == SQL.upsert_recipients else None


def rows_of(write: Write) -> int:
    """How many rows a write changes at most (what it weighs in a transaction)."""
    added = added_recipients(write)
    return 1 if added is None else len(added.ids)


def writes_for(seq: int, envelope: ev.Envelope) -> list[Write]:
    """The writes that apply one event (raises UnknownEventError for an unknown type)."""
    return writes_for_event(seq, ev.payload_of(envelope), envelope.occurred_at, envelope)


def writes_for_event(
    seq: int, event: ev.Event, at: datetime, envelope: ev.Envelope | ev.StoredFact
) -> list[Write]:
    """`writes_for` with the payload already decoded."""
    # Each group is a match over a few event types; the group of a type is found once,
    # since a class pattern's isinstance on a pydantic model is slow and adds up.
    group = _GROUP_OF.get(type(event))
    if group is not None:
        writes = group(seq, event, at, envelope.event_id)
        assert writes is not None
        return writes
    for group in _GROUPS:
        writes = group(seq, event, at, envelope.event_id)
        if writes is not None:
            _GROUP_OF[type(event)] = group
            return writes
    raise ev.UnknownEventError(envelope.type, envelope.schema_version)


def _mailbox_writes(
    seq: int, event: ev.Event, at: datetime, event_id: uuid.UUID
) -> list[Write] | None:
    match event:
        case ev.MailboxCreated():
            return [
                _upsert_mailbox(event.mailbox_id, event.config, at, seq),
                Write(SQL.set_mailbox_owner, (event.mailbox_id, event.owner_id)),
            ]
        case ev.MailboxUpdated():
            return [_upsert_mailbox(event.mailbox_id, event.config, at, seq)]
        case ev.MailboxDeleted():
            return [
                Write(SQL.delete_mailbox_shares, (event.mailbox_id,)),
                Write(SQL.delete_mailbox, (event.mailbox_id,)),
            ]
        case ev.MailboxOwnerChanged():
            return [Write(SQL.set_mailbox_owner, (event.mailbox_id, event.owner_id))]
        case ev.MailboxShared():
            return [Write(SQL.insert_mailbox_share, (event.mailbox_id, event.user_id))]
        case ev.MailboxUnshared():
            return [Write(SQL.delete_mailbox_share, (event.mailbox_id, event.user_id))]
    return None


def _campaign_writes(
    seq: int, event: ev.Event, at: datetime, event_id: uuid.UUID
) -> list[Write] | None:
    match event:
        case ev.CampaignOwnerChanged():
            return [Write(SQL.set_campaign_owner, (event.campaign_id, event.owner_id))]
        case ev.CampaignShared():
            return [Write(SQL.insert_campaign_share, (event.campaign_id, event.user_id))]
        case ev.CampaignUnshared():
            return [Write(SQL.delete_campaign_share, (event.campaign_id, event.user_id))]
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
                        event.owner_id,
                        event.cloned_from,
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
                Write(SQL.delete_campaign_shares, (event.campaign_id,)),
                Write(SQL.delete_campaign_recipients, (event.campaign_id,)),
                Write(SQL.delete_campaign, (event.campaign_id,)),
            ]
    return None


def _recipient_writes(
    seq: int, event: ev.Event, at: datetime, event_id: uuid.UUID
) -> list[Write] | None:
    match event:
        case ev.RecipientsAdded():
            recipients = event.recipients
            if not recipients:
                return []
            added = AddedRecipients(
                event.campaign_id,
                [r.recipient_id for r in recipients],
                [r.email for r in recipients],
                [r.name for r in recipients],
                [r.attributes for r in recipients],
                at,
            )
            return [Write(SQL.upsert_recipients, (added,))]
        case ev.RecipientDeleted():
            return [Write(SQL.delete_recipient, (event.campaign_id, event.recipient_id))]
    return None


def _status(
    campaign_id: uuid.UUID,
    status: CampaignStatus,
    reason: str,
    at: datetime,
    seq: int,
    run_id: uuid.UUID | None = None,
    run_chunks: int | None = None,
) -> Write:
    return Write(
        SQL.set_campaign_status, (campaign_id, status, reason, at, seq, run_id, run_chunks)
    )


def _outcome(
    event: ev.MessageSent | ev.MessageFailed | ev.MessageUnknown | ev.MessageSuppressed,
    status: MessageStatus,
    at: datetime,
    seq: int,
    *,
    message_id: str | None = None,
    smtp_code: int | None = None,
    smtp_reply: str = "",
    hard_bounce: bool = False,
    appended: bool = False,
    reason: str = "",
) -> Write:
    return Write(
        SQL.record_outcome,
        (
            event.campaign_id,
            event.recipient_id,
            event.email,
            status,
            OUTCOME_RANK[status],
            message_id,
            smtp_code,
            smtp_reply,
            hard_bounce,
            appended,
            reason,
            at,
            seq,
        ),
    )


def _run_writes(seq: int, event: ev.Event, at: datetime, event_id: uuid.UUID) -> list[Write] | None:
    """Writes of a campaign run's events (schedule, start, pause, ...); None if not one."""
    match event:
        case ev.CampaignScheduled():
            o = event.options
            return [
                Write(
                    SQL.schedule_campaign,
                    (
                        event.campaign_id,
                        event.send_at,
                        o.batch_size,
                        o.sleep_between_batches_sec,
                        at,
                        seq,
                    ),
                )
            ]
        case ev.CampaignUnscheduled():
            return [Write(SQL.unschedule_campaign, (event.campaign_id, at, seq))]
        case ev.CampaignSendingStarted():
            o = event.options
            return [
                Write(
                    SQL.start_campaign,
                    (
                        event.campaign_id,
                        event.run_id,
                        o.batch_size,
                        o.sleep_between_batches_sec,
                        at,
                        seq,
                        event.chunks,
                    ),
                ),
                *(
                    Write(SQL.insert_campaign_link, (event.campaign_id, i, url))
                    for i, url in enumerate(event.links)
                ),
            ]
        case ev.CampaignPaused():
            return [_status(event.campaign_id, CampaignStatus.PAUSED, event.reason, at, seq)]
        case ev.CampaignResumed():
            return [
                _status(
                    event.campaign_id,
                    CampaignStatus.SENDING,
                    "",
                    at,
                    seq,
                    event.run_id,
                    event.chunks,
                )
            ]
        case ev.CampaignCancelled():
            return [_status(event.campaign_id, CampaignStatus.CANCELLED, "", at, seq)]
        case ev.CampaignCompleted():
            return [_status(event.campaign_id, CampaignStatus.DONE, "", at, seq)]
        case ev.CampaignFailed():
            return [_status(event.campaign_id, CampaignStatus.FAILED, event.reason, at, seq)]
    return None


def _outcome_writes(
    seq: int, event: ev.Event, at: datetime, event_id: uuid.UUID
) -> list[Write] | None:
    """Writes of the sender's outcomes, copies and suppressions; None if not one."""
    match event:
        case ev.MessageSent():
            return [
                _outcome(
                    event,
                    MessageStatus.SENT,
                    at,
                    seq,
                    message_id=event.message_id,
                    smtp_reply=event.smtp_reply,
                    appended=event.appended,
                )
            ]
        case ev.MessageFailed():
            return [
                _outcome(
                    event,
                    MessageStatus.FAILED,
                    at,
                    seq,
                    smtp_code=event.smtp_code,
                    smtp_reply=event.smtp_reply,
                    hard_bounce=event.hard_bounce,
                )
            ]
        case ev.MessageUnknown():
            return [_outcome(event, MessageStatus.UNKNOWN, at, seq, reason=event.reason)]
        case ev.MessageSuppressed():
            return [_outcome(event, MessageStatus.SUPPRESSED, at, seq, reason=event.reason)]
        case ev.SentCopiesFiled():
            return [Write(SQL.mark_copies_filed, (event.campaign_id, event.recipient_ids))]
        case ev.SentCopiesPending():
            return [Write(SQL.mark_copies_pending, (event.campaign_id, event.recipient_ids))]
        case ev.AddressSuppressed():
            mailbox = event.mailbox_id or NIL_MAILBOX
            return [
                Write(
                    SQL.add_suppression,
                    (
                        address_key(event.email),
                        mailbox,
                        event.email,
                        event.reason,
                        event.detail,
                        at,
                    ),
                )
            ]
        case ev.AddressUnsuppressed():
            mailbox = event.mailbox_id or NIL_MAILBOX
            return [
                Write(SQL.remove_suppression, (address_key(event.email), mailbox, event.reason))
            ]
    return None


def _engagement_writes(
    seq: int, event: ev.Event, at: datetime, event_id: uuid.UUID
) -> list[Write] | None:
    """Writes of the tracker's events (opens, clicks, unsubscribes); None if not one."""
    match event:
        case ev.MessageOpened():
            return [
                Write(
                    SQL.record_open,
                    (
                        event_id,
                        event.campaign_id,
                        event.recipient_id,
                        at,
                        event.machine,
                        event.machine_reason,
                        event.user_agent,
                    ),
                )
            ]
        case ev.LinkClicked():
            return [
                Write(
                    SQL.record_click,
                    (
                        event_id,
                        event.campaign_id,
                        event.recipient_id,
                        event.link_index,
                        event.url,
                        at,
                        event.machine,
                        event.machine_reason,
                        event.user_agent,
                    ),
                )
            ]
        case ev.RecipientUnsubscribed():
            return [
                Write(
                    SQL.record_unsubscribe,
                    (event.campaign_id, event.recipient_id, event.email, event.method, at),
                ),
                _suppress(event.email, event.mailbox_id, "unsubscribed", event.method, at),
            ]
        case ev.RecipientResubscribed():
            mailbox = event.mailbox_id or NIL_MAILBOX
            return [
                Write(SQL.record_resubscribe, (event.campaign_id, event.recipient_id, at)),
                Write(SQL.remove_unsubscribe_suppression, (address_key(event.email), mailbox)),
            ]
    return None


def _inbound_writes(
    seq: int, event: ev.Event, at: datetime, event_id: uuid.UUID
) -> list[Write] | None:
    """Writes of imap-sync's events (bounces, delays, replies); None if not one."""
    match event:
        case ev.MessageBounced():
            writes = [
                _delivery_event(
                    event,
                    "bounced",
                    at,
                    email=event.email,
                    mailbox_id=event.mailbox_id,
                    hard=event.hard,
                    status=event.status,
                    action=event.action,
                    diagnostic=event.diagnostic,
                    repeatable=event.repeatable,
                    reason=event.reason,
                )
            ]
            if event.suppress:
                reason = "hard_bounce" if event.hard else "soft_bounce"
                detail = f"{event.status} {event.diagnostic}".strip()
                writes.append(_suppress(event.email, event.mailbox_id, reason, detail, at))
            return writes
        case ev.MessageDeferred():
            return [
                _delivery_event(
                    event,
                    "deferred",
                    at,
                    email=event.email,
                    status=event.status,
                    diagnostic=event.diagnostic,
                )
            ]
        case ev.MessageReplied() | ev.MessageAutoReplied():
            kind = "replied" if isinstance(event, ev.MessageReplied) else "auto_replied"
            return [
                _delivery_event(
                    event,
                    kind,
                    at,
                    email=event.from_address,
                    from_address=event.from_address,
                    subject=event.subject,
                )
            ]
        case ev.InboundSkipped():
            return [
                Write(
                    SQL.record_inbound_skipped,
                    (
                        event.source,
                        event.mailbox_id,
                        event.folder,
                        event.uidvalidity,
                        event.uid,
                        event.kind,
                        event.reason,
                        at,
                    ),
                )
            ]
    return None


def _delivery_event(
    event: ev.MessageBounced | ev.MessageDeferred | ev.MessageReplied | ev.MessageAutoReplied,
    kind: str,
    at: datetime,
    *,
    email: str,
    mailbox_id: uuid.UUID | None = None,
    hard: bool = False,
    status: str = "",
    action: str = "",
    diagnostic: str = "",
    from_address: str = "",
    subject: str = "",
    repeatable: bool = False,
    reason: str = "",
) -> Write:
    return Write(
        SQL.record_delivery_event,
        (
            f"{kind}:{event.source}:{event.recipient_id}",
            event.campaign_id,
            event.recipient_id,
            email,
            mailbox_id,
            kind,
            hard,
            status,
            action,
            diagnostic,
            from_address,
            subject,
            event.source,
            at,
            repeatable,
            reason,
        ),
    )


def _suppress(
    email: str, mailbox_id: uuid.UUID | None, reason: str, detail: str, at: datetime
) -> Write:
    return Write(
        SQL.add_suppression,
        (address_key(email), mailbox_id or NIL_MAILBOX, email, reason, detail, at),
    )


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
            config.append_to_sent,
        ),
    )


WriteGroup = Callable[[int, ev.Event, datetime, uuid.UUID], list[Write] | None]
_GROUPS: tuple[WriteGroup, ...] = (
    _recipient_writes,
    _outcome_writes,
    _engagement_writes,
    _campaign_writes,
    _mailbox_writes,
    _run_writes,
    _inbound_writes,
)
_GROUP_OF: dict[type[ev.Event], WriteGroup] = {}


def merge_recipient_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Set-based upsert rows for `recipients` from upsert-recipient's arguments, with
    repeated (campaign, recipient) pairs folded into one by the rule the upsert applies (a
    non-empty name wins, attributes merge), so INSERT ... ON CONFLICT never meets the same
    row twice. Each row ends with (created_at, updated_at): the first and the last time of
    its pair, as one upsert per event would have left them."""
    if len({row[1] for row in rows}) == len(rows):
        # The usual case: one event's recipients, already merged by the API.
        return [(*row, row[5]) for row in rows]
    merged: dict[tuple[Any, Any], tuple[Any, ...]] = {}
    for row in rows:
        campaign_id, recipient_id, email, name, attributes, at = row
        key = (campaign_id, recipient_id)
        created = at
        previous = merged.get(key)
        if previous is not None:
            name = name or previous[3]
            attributes = {**previous[4], **attributes}
            created = previous[5]
        merged[key] = (campaign_id, recipient_id, email, name, attributes, created, at)
    return list(merged.values())


Group = tuple[str, list[tuple[Any, ...]]]


def fold_recipient_writes(writes: list[Write]) -> list[Group]:
    """The `recipients` table's writes, in stream order, as few set-based statements.

    A run of upsert-recipient and delete-recipient writes becomes at most one
    delete-recipients (every pair deleted in the run) and then one upsert-recipients (per
    pair, only the upserts after its last delete, folded by `merge_recipient_rows`): the
    rows end as the writes one by one would leave them. An import's rows (AddedRecipients)
    count as their upserts one by one, except in the usual run of imports alone, each
    recipient once, which goes straight to the arrays. Any other statement (a campaign's
    deletion) ends the run and keeps its place.
    """
    groups: list[Group] = []
    deleted: dict[tuple[Any, Any], None] = {}
    upserts: dict[tuple[Any, Any], list[tuple[Any, ...]]] = {}
    added: list[AddedRecipients] = []  # while the run holds imports' rows only

    def one_by_one(bulks: list[AddedRecipients]) -> None:
        for bulk in bulks:
            for row in bulk.rows():
                upserts.setdefault((row[0], row[1]), []).append(row)
        bulks.clear()

    def flush() -> None:
        if added and _distinct(added):
            # The usual run (an import's events, each recipient once): straight to columns.
            groups.append((SQL.upsert_recipients, [_added_columns(added)]))
            added.clear()
        one_by_one(added)
        if deleted:
            groups.append((SQL.delete_recipients, [tuple(_columns(list(deleted), 2))]))
        rows = merge_recipient_rows([row for rows in upserts.values() for row in rows])
        if rows:
            columns = _columns(rows, 7)
            columns[4] = [to_json(attributes).decode() for attributes in columns[4]]
            groups.append((SQL.upsert_recipients, [tuple(columns)]))
        deleted.clear()
        upserts.clear()

    for write in writes:
        bulk = added_recipients(write)
        if bulk is not None:
            added.append(bulk)
            if deleted or upserts:
                one_by_one(added)
        elif write.sql == SQL.upsert_recipient:
            one_by_one(added)
            upserts.setdefault((write.args[0], write.args[1]), []).append(write.args)
        elif write.sql == SQL.delete_recipient:
            one_by_one(added)
            key = (write.args[0], write.args[1])
            deleted[key] = None
            upserts.pop(key, None)
        else:
            flush()
            if groups and groups[-1][0] == write.sql:
                groups[-1][1].append(write.args)
            else:
                groups.append((write.sql, [write.args]))
    flush()
    return groups


def _distinct(added: list[AddedRecipients]) -> bool:
    """Whether no recipient comes twice (UUID.int: hashing UUIDs themselves is slow)."""
    total = sum(len(bulk.ids) for bulk in added)
    if len(added) == 1:
        return len({i.int for i in added[0].ids}) == total
    return len({i.int for bulk in added for i in bulk.ids}) == total


def _added_columns(added: list[AddedRecipients]) -> tuple[Any, ...]:
    """upsert-recipients' arrays for recipients that each come once (created and updated
    at their event's time)."""
    campaigns: list[uuid.UUID] = []
    times: list[datetime] = []
    ids: list[uuid.UUID] = []
    emails: list[str] = []
    names: list[str] = []
    attributes: list[str] = []
    for bulk in added:
        count = len(bulk.ids)
        campaigns += [bulk.campaign_id] * count
        times += [bulk.at] * count
        ids += bulk.ids
        emails += bulk.emails
        names += bulk.names
        attributes += [to_json(a).decode() for a in bulk.attributes]
    return (campaigns, ids, emails, names, attributes, times, times)


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[Any]:
    """Rows as `width` column lists (the arrays an unnest statement takes)."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    assert len(columns) == width, "rows of another width"
    return columns


_TABLE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)


@functools.cache
def table_of(sql: str) -> str:
    """The table a write statement changes (the import's statement counts as a write to
    `recipients`: what else it writes, it writes for those rows; see upsert-recipients)."""
    if sql == SQL.upsert_recipients:
        return "recipients"
    match = _TABLE.match(sql)
    if match is None:
        raise ValueError(f"not a single-table write: {sql[:60]!r}")
    return match.group(1).lower()


# The import's statement (upsert-recipients) writes message_states and campaign_counters
# too, so those tables' own writes (a campaign's deletion) keep their place among the
# recipients' writes.
_ORDERED_WITH = {"message_states": "recipients", "campaign_counters": "recipients"}


def group_writes(writes: list[Write]) -> list[Group]:
    """The writes as few statements as order allows.

    Writes to one table keep their order; writes to different tables are independent
    (the read models have no foreign keys, and the one statement that reads other tables,
    the import's, gives the same rows whichever of their writes ran before: see
    upsert-recipients), so they are partitioned by table first (message_states and
    campaign_counters with recipients), then consecutive writes of one statement merge
    into one executemany, and the recipients' writes fold into set-based statements
    (`fold_recipient_writes`).
    """
    by_table: dict[str, list[Write]] = {}
    for write in writes:
        table = table_of(write.sql)
        by_table.setdefault(_ORDERED_WITH.get(table, table), []).append(write)
    groups: list[Group] = []
    for table, table_writes in by_table.items():
        if table == "recipients":
            groups += fold_recipient_writes(table_writes)
            continue
        for write in table_writes:
            if groups and groups[-1][0] == write.sql:
                groups[-1][1].append(write.args)
            else:
                groups.append((write.sql, [write.args]))
    return groups
