"""The event catalog: every fact MC Pigeon stores in the JetStream EVENTS stream.

An event is a frozen pydantic model whose class docstring is its catalog entry (see
docs/events.md). It travels inside an `Envelope` on the subject
`pigeon.events.<aggregate>.<verb>`, where `<aggregate>.<verb>` is the event's `type`.
Events never carry secrets: mailbox passwords live encrypted in the API's own table.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

EVENT_SUBJECT_PREFIX = "pigeon.events"


class Event(BaseModel):
    """Base of every event payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ClassVar[str]
    schema_version: ClassVar[int] = 1


class Envelope(BaseModel):
    """What is stored in JetStream: the payload plus who, what and when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str
    schema_version: int
    occurred_at: datetime
    aggregate_id: str
    causation_id: str | None = None
    actor: str | None = None
    data: dict[str, Any]


# --- mailboxes --------------------------------------------------------------------------

Security = Literal["plain", "starttls", "tls"]


class ServerEndpoint(BaseModel):
    """Where and how to reach one SMTP or IMAP server (the password is not here)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str
    port: int
    security: Security
    username: str


class MailboxConfig(BaseModel):
    """A mailbox's whole configuration, as every mailbox event carries it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    from_name: str
    from_address: str
    smtp: ServerEndpoint
    imap: ServerEndpoint
    sent_folder: str = ""
    bounce_folder: str = ""
    rate_per_second: int | None = None
    rate_per_hour: int | None = None
    rate_per_day: int | None = None
    append_to_sent: Literal["auto", "always", "never"] = "auto"


class MailboxCreated(Event):
    """A mailbox was connected: its servers, folders, sender identity and send-rate limits.
    The SMTP and IMAP passwords are stored encrypted by the API, never in the event."""

    type: ClassVar[str] = "mailbox.created"
    mailbox_id: uuid.UUID
    config: MailboxConfig
    owner_id: uuid.UUID | None = None  # None in events from before owners existed


class MailboxUpdated(Event):
    """A mailbox's configuration changed; `config` is the whole new configuration and
    `passwords_changed` says whether a password was replaced (without the password)."""

    type: ClassVar[str] = "mailbox.updated"
    mailbox_id: uuid.UUID
    config: MailboxConfig
    passwords_changed: bool = False


class MailboxDeleted(Event):
    """A mailbox was removed; campaigns that used it keep their history."""

    type: ClassVar[str] = "mailbox.deleted"
    mailbox_id: uuid.UUID


class MailboxShared(Event):
    """The mailbox's owner let another user send through it (pick it for a campaign)
    without seeing or changing its settings."""

    type: ClassVar[str] = "mailbox.shared"
    mailbox_id: uuid.UUID
    user_id: uuid.UUID


class MailboxUnshared(Event):
    """A user may no longer pick the mailbox for new campaigns."""

    type: ClassVar[str] = "mailbox.unshared"
    mailbox_id: uuid.UUID
    user_id: uuid.UUID


class MailboxOwnerChanged(Event):
    """The mailbox now belongs to `owner_id` (an administrator's transfer, or the first
    administrator adopting a mailbox from before owners existed)."""

    type: ClassVar[str] = "mailbox.owner_changed"
    mailbox_id: uuid.UUID
    owner_id: uuid.UUID


# --- campaigns --------------------------------------------------------------------------


class CampaignCreated(Event):
    """A campaign was drafted: its name, subject, Markdown template and mailbox."""

    type: ClassVar[str] = "campaign.created"
    campaign_id: uuid.UUID
    name: str
    subject: str
    template_markdown: str
    mailbox_id: uuid.UUID | None
    owner_id: uuid.UUID | None = None  # None in events from before owners existed
    cloned_from: uuid.UUID | None = None


class CampaignUpdated(Event):
    """A draft campaign was edited; it carries the whole editable state after the edit
    and `changed`, the names of the fields that changed."""

    type: ClassVar[str] = "campaign.updated"
    campaign_id: uuid.UUID
    name: str
    subject: str
    template_markdown: str
    mailbox_id: uuid.UUID | None
    changed: list[str]


class CampaignDeleted(Event):
    """A campaign that never started sending was deleted, with its recipients."""

    type: ClassVar[str] = "campaign.deleted"
    campaign_id: uuid.UUID


class CampaignShared(Event):
    """The campaign's owner shared it with a user: a member may read and change it, a
    viewer may read it."""

    type: ClassVar[str] = "campaign.shared"
    campaign_id: uuid.UUID
    user_id: uuid.UUID


class CampaignUnshared(Event):
    """A user no longer has access to the campaign through a share."""

    type: ClassVar[str] = "campaign.unshared"
    campaign_id: uuid.UUID
    user_id: uuid.UUID


class CampaignOwnerChanged(Event):
    """The campaign now belongs to `owner_id` (an administrator's transfer, or the first
    administrator adopting a campaign from before owners existed)."""

    type: ClassVar[str] = "campaign.owner_changed"
    campaign_id: uuid.UUID
    owner_id: uuid.UUID


# --- recipients -------------------------------------------------------------------------


class RecipientData(BaseModel):
    """One recipient as added: `recipient_id` is derived from the campaign and the
    case-folded address, so adding the same address twice names the same recipient."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipient_id: uuid.UUID
    email: str
    name: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)


class RecipientsAdded(Event):
    """Recipients were added to a campaign (one, a list, or a CSV import; many per event).
    An address already in the campaign is merged: a non-empty name replaces the old one
    and attributes are merged key by key, the newer value winning."""

    type: ClassVar[str] = "recipients.added"
    campaign_id: uuid.UUID
    recipients: list[RecipientData]
    source: Literal["api", "bulk", "csv"] = "api"


class RecipientDeleted(Event):
    """A recipient was removed from a campaign that has not started sending."""

    type: ClassVar[str] = "recipient.deleted"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID


# --- sending ----------------------------------------------------------------------------


class SendOptions(BaseModel):
    """How a campaign is sent: recipients per chunk job and the pause between chunks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int
    sleep_between_batches_sec: float = 0.0


class CampaignScheduled(Event):
    """A campaign was scheduled to start sending at `send_at` (UTC)."""

    type: ClassVar[str] = "campaign.scheduled"
    campaign_id: uuid.UUID
    send_at: datetime
    options: SendOptions


class CampaignUnscheduled(Event):
    """A scheduled campaign went back to draft before it started."""

    type: ClassVar[str] = "campaign.unscheduled"
    campaign_id: uuid.UUID


class CampaignSendingStarted(Event):
    """A campaign started sending: `run_id` names this send, `chunks` jobs of at most
    `options.batch_size` recipients were enqueued for `recipients` recipients, and
    `links` are the campaign's registered click destinations (index = link number)."""

    type: ClassVar[str] = "campaign.sending_started"
    campaign_id: uuid.UUID
    run_id: uuid.UUID
    recipients: int
    chunks: int
    options: SendOptions
    links: list[str]


class CampaignPaused(Event):
    """Sending stopped until resumed; `reason` says why (a person, or e.g. the SMTP server
    refusing the mailbox's password). Messages already sent stay sent."""

    type: ClassVar[str] = "campaign.paused"
    campaign_id: uuid.UUID
    reason: str


class CampaignResumed(Event):
    """A paused campaign carries on: recipients without an outcome were enqueued again
    under `run_id` in `chunks` jobs."""

    type: ClassVar[str] = "campaign.resumed"
    campaign_id: uuid.UUID
    run_id: uuid.UUID
    chunks: int


class CampaignCancelled(Event):
    """A campaign was cancelled: recipients not yet sent to never will be."""

    type: ClassVar[str] = "campaign.cancelled"
    campaign_id: uuid.UUID


class CampaignCompleted(Event):
    """Every recipient of the campaign has an outcome (the campaign is DONE)."""

    type: ClassVar[str] = "campaign.completed"
    campaign_id: uuid.UUID
    sent: int
    failed: int
    unknown: int
    suppressed: int


class CampaignFailed(Event):
    """Sending failed as a whole (e.g. a chunk job kept failing); `reason` says why."""

    type: ClassVar[str] = "campaign.failed"
    campaign_id: uuid.UUID
    reason: str


class MessageSent(Event):
    """The SMTP server accepted the message for this recipient (`smtp_reply` is its
    answer to DATA; the event's time is when it did). `appended` is true only in events
    stored before `sent_copies.filed` existed; a copy filed later is stated by that
    event."""

    type: ClassVar[str] = "message.sent"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    message_id: str
    smtp_reply: str
    appended: bool


class MessageFailed(Event):
    """The SMTP server refused the message for good (5xx); `hard_bounce` is true when the
    reply says the address itself does not exist (5.1.x), which also suppresses it."""

    type: ClassVar[str] = "message.failed"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    smtp_code: int
    smtp_reply: str
    hard_bounce: bool


class MessageUnknown(Event):
    """Whether the message went out cannot be known (the sender died between claiming the
    recipient and recording the outcome): never resent, reported as unknown."""

    type: ClassVar[str] = "message.unknown"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    reason: str


class MessageSuppressed(Event):
    """The recipient was skipped at send time: the address is suppressed (unsubscribed,
    hard-bounced or added by hand)."""

    type: ClassVar[str] = "message.suppressed"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    reason: str


class SentCopiesFiled(Event):
    """Copies of these recipients' messages were put in the mailbox's Sent folder
    (`folder`), each exactly once: from now on `appended` is true for them. Stated once
    per filed batch, also by a sender that took the chunk over from one that died."""

    type: ClassVar[str] = "sent_copies.filed"
    campaign_id: uuid.UUID
    mailbox_id: uuid.UUID
    folder: str
    recipient_ids: list[uuid.UUID]


class SentCopiesPending(Event):
    """These recipients' messages went out but their copies could not be filed yet (the
    IMAP server refused or could not be reached: `reason`); the bytes are kept and the
    chunk is tried again until a `sent_copies.filed` names them."""

    type: ClassVar[str] = "sent_copies.pending"
    campaign_id: uuid.UUID
    mailbox_id: uuid.UUID
    recipient_ids: list[uuid.UUID]
    reason: str


class AddressSuppressed(Event):
    """An address must not be sent to again: from one mailbox (`mailbox_id`) or from
    every mailbox (`mailbox_id` null). `reason`: unsubscribed, hard_bounce or manual."""

    type: ClassVar[str] = "address.suppressed"
    email: str
    mailbox_id: uuid.UUID | None
    reason: Literal["unsubscribed", "hard_bounce", "manual"]
    detail: str = ""


class AddressUnsuppressed(Event):
    """A suppression was lifted by a user: the one for `reason`, or every reason of that
    address and mailbox when `reason` is null."""

    type: ClassVar[str] = "address.unsuppressed"
    email: str
    mailbox_id: uuid.UUID | None
    reason: str | None = None


# --- engagement (tracker) -------------------------------------------------------------

MachineReason = Literal["", "proxy", "apple_mpp", "scanner", "head", "prefetch"]


class MessageOpened(Event):
    """The open pixel of a message was fetched. `machine` is true when the fetch came from
    an image proxy, Apple Mail Privacy Protection or a scanner rather than a person
    (`machine_reason` says which); the read model also counts a fetch within seconds of
    delivery as a machine's."""

    type: ClassVar[str] = "message.opened"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    machine: bool
    machine_reason: MachineReason = ""
    user_agent: str = ""


class LinkClicked(Event):
    """A tracked link of a message was followed (redirected to `url`, the campaign's
    registered link `link_index`). `machine` as for `message.opened`: link scanners, HEAD
    requests and known bot agents."""

    type: ClassVar[str] = "link.clicked"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    link_index: int
    url: str
    machine: bool
    machine_reason: MachineReason = ""
    user_agent: str = ""


class RecipientUnsubscribed(Event):
    """The recipient unsubscribed through a message's unsubscribe URL: the address is
    suppressed for the campaign's mailbox (`mailbox_id`; null: every mailbox). `method`:
    one_click (RFC 8058 POST from the mail client) or page (the confirmation button)."""

    type: ClassVar[str] = "recipient.unsubscribed"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    mailbox_id: uuid.UUID | None
    method: Literal["one_click", "page"]


class RecipientResubscribed(Event):
    """The recipient undid their unsubscribe from the confirmation page: the unsubscribe
    suppression of that address for that mailbox is lifted."""

    type: ClassVar[str] = "recipient.resubscribed"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    mailbox_id: uuid.UUID | None


# --- mailbox sync (imap-sync) -----------------------------------------------------------


class MessageBounced(Event):
    """A delivery status notification (or a non-standard bounce) says the message could not
    be delivered. `hard`: the address itself is bad (unknown user or domain).
    `suppress`: the address is suppressed for the mailbox by this event (a hard bounce,
    or the soft bounce that reached the repeat limit). `repeatable`: a soft bounce that
    counts toward that limit (a full or disabled mailbox, a delivery given up on; never
    a policy, spam, content or size rejection, nor an unexplained one). `source` names
    the mail it was read from (mailbox, folder UIDVALIDITY and UID). `reason` is why, in
    imap-sync's vocabulary (user_unknown, host_unknown, mailbox_full, suspend, blocked,
    spam, policy, auth_failure, expired, too_large, rejected, delivered, unknown),
    `evidence` what it was read from ("diagnostic text: over quota"). Version 2 added
    `reason` and `evidence`; a version 1 event reads as reason `unknown` with no
    evidence."""

    type: ClassVar[str] = "message.bounced"
    schema_version: ClassVar[int] = 2
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    mailbox_id: uuid.UUID | None
    hard: bool
    status: str
    action: str
    diagnostic: str
    suppress: bool
    source: str
    repeatable: bool = False
    reason: BounceReason
    evidence: str


BounceReason = Literal[
    "user_unknown",
    "host_unknown",
    "mailbox_full",
    "suspend",
    "blocked",
    "spam",
    "policy",
    "auth_failure",
    "expired",
    "too_large",
    "rejected",
    "delivered",
    "unknown",
]


def upcast_message_bounced_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    """A version 1 `message.bounced` said no reason: it is `unknown`, with no evidence."""
    return {"reason": "unknown", "evidence": "", **data}


class MessageDeferred(Event):
    """A delivery status notification says delivery of the message is delayed (the
    remote server keeps trying)."""

    type: ClassVar[str] = "message.deferred"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    status: str
    diagnostic: str
    source: str


class MessageReplied(Event):
    """A person replied to the message (their mail quotes its Message-ID)."""

    type: ClassVar[str] = "message.replied"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    from_address: str
    subject: str
    reply_message_id: str
    source: str


class MessageAutoReplied(Event):
    """An automatic answer (RFC 3834 Auto-Submitted, out-of-office) came back for the
    message."""

    type: ClassVar[str] = "message.auto_replied"
    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    from_address: str
    subject: str
    reply_message_id: str
    source: str


class InboundSkipped(Event):
    """A mail in a mailbox's bounce folder was read but yields nothing: it could not be
    parsed (`kind` unparsed), or it matches no message of MC Pigeon (`kind` unmatched).
    Recorded so it can be looked at; the sync goes on past it."""

    type: ClassVar[str] = "inbound.skipped"
    mailbox_id: uuid.UUID
    folder: str
    uidvalidity: int
    uid: int
    kind: Literal["unparsed", "unmatched"]
    reason: str
    source: str


CATALOG: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        MailboxCreated,
        MailboxUpdated,
        MailboxDeleted,
        MailboxShared,
        MailboxUnshared,
        MailboxOwnerChanged,
        CampaignCreated,
        CampaignUpdated,
        CampaignDeleted,
        CampaignShared,
        CampaignUnshared,
        CampaignOwnerChanged,
        RecipientsAdded,
        RecipientDeleted,
        CampaignScheduled,
        CampaignUnscheduled,
        CampaignSendingStarted,
        CampaignPaused,
        CampaignResumed,
        CampaignCancelled,
        CampaignCompleted,
        CampaignFailed,
        MessageSent,
        MessageFailed,
        MessageUnknown,
        MessageSuppressed,
        SentCopiesFiled,
        SentCopiesPending,
        AddressSuppressed,
        AddressUnsuppressed,
        MessageOpened,
        LinkClicked,
        RecipientUnsubscribed,
        RecipientResubscribed,
        MessageBounced,
        MessageDeferred,
        MessageReplied,
        MessageAutoReplied,
        InboundSkipped,
    )
}


# (type, stored version) -> the pure function that lifts its data one version up.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    (MessageBounced.type, 1): upcast_message_bounced_v1_v2,
}


def upcast(event_type: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
    """`data` of a stored event lifted to the catalog's version of its type; an unknown
    type, a version without an upcaster or a newer one than the catalog's raises
    UnknownEventError."""
    cls = CATALOG.get(event_type)
    if cls is None or schema_version > cls.schema_version:
        raise UnknownEventError(event_type, schema_version)
    version = schema_version
    while version < cls.schema_version:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise UnknownEventError(event_type, schema_version)
        data = step(data)
        version += 1
    return data


def envelope_for(
    event: Event,
    aggregate_id: str,
    *,
    event_id: uuid.UUID | None = None,
    causation_id: str | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Wrap a payload for storage; pass `event_id` to make a retried publish deduplicate."""
    return Envelope(
        event_id=event_id or uuid.uuid4(),
        type=event.type,
        schema_version=event.schema_version,
        occurred_at=occurred_at or datetime.now(UTC),
        aggregate_id=aggregate_id,
        causation_id=causation_id,
        actor=actor,
        data=event.model_dump(mode="json"),
    )


def envelope_of_data(
    cls: type[Event], data: dict[str, Any], aggregate_id: str, *, actor: str | None = None
) -> Envelope:
    """An envelope around payload data already in its JSON form (for bulk events whose
    parts were validated one by one; the projector validates the whole on decode)."""
    return Envelope(
        event_id=uuid.uuid4(),
        type=cls.type,
        schema_version=cls.schema_version,
        occurred_at=datetime.now(UTC),
        aggregate_id=aggregate_id,
        actor=actor,
        data=data,
    )


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event in the form it is stored in: its type, its `Nats-Msg-Id` and its JSON."""

    event_type: str
    msg_id: str
    payload: bytes


def encoded(envelope: Envelope, msg_id: str | None = None) -> EncodedEvent:
    return EncodedEvent(
        envelope.type, msg_id or str(envelope.event_id), envelope.model_dump_json().encode()
    )


def encoded_with_data(
    cls: type[Event], data_json: bytes, aggregate_id: str, *, actor: str | None = None
) -> EncodedEvent:
    """An event around payload data already encoded as JSON (a bulk event whose parts were
    validated one by one: its data is not parsed back only to be dumped again). The JSON
    is the envelope's with `data` last, as `encoded` writes it."""
    head = envelope_of_data(cls, {}, aggregate_id, actor=actor)
    fields = head.model_dump_json(exclude={"data"}).encode()
    return EncodedEvent(cls.type, str(head.event_id), fields[:-1] + b',"data":' + data_json + b"}")


class UnknownEventError(Exception):
    """Raised when a stored envelope names a type (or a version) the catalog does not know."""

    def __init__(self, event_type: str, schema_version: int) -> None:
        super().__init__(f"unknown event {event_type} v{schema_version}")
        self.event_type = event_type
        self.schema_version = schema_version


def decode_envelope(raw: bytes) -> Envelope:
    return Envelope.model_validate_json(raw)


class StoredFact(BaseModel):
    """An envelope whose `data` is already the typed payload (see `decode_event`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str
    schema_version: int
    occurred_at: datetime
    aggregate_id: str
    causation_id: str | None = None
    actor: str | None = None
    data: Any


def _typed_envelope(cls: type[Event]) -> type[StoredFact]:
    return create_model(f"Stored{cls.__name__}", __base__=StoredFact, data=(cls, ...))


_TYPED_ENVELOPES: dict[str, type[StoredFact]] = {
    name: _typed_envelope(cls) for name, cls in CATALOG.items()
}
_TYPE_FIELD = re.compile(rb'"type":"([a-z_.]+)"')


def decode_event(raw: bytes) -> tuple[StoredFact, Event]:
    """Envelope and typed payload in one JSON pass (the projector's hot path); events of
    an unknown type or another schema version raise UnknownEventError."""
    match = _TYPE_FIELD.search(raw, 0, 512)
    typed = _TYPED_ENVELOPES.get(match.group(1).decode()) if match else None
    if typed is None:
        envelope = decode_envelope(raw)
        payload = payload_of(envelope)  # raises UnknownEventError
        fact = StoredFact(**{**envelope.model_dump(), "data": payload})
        return fact, payload
    current: StoredFact | None
    try:
        current = typed.model_validate_json(raw)
    except ValidationError:
        current = None  # perhaps an older version whose data needs upcasting
    if current is None or current.schema_version != current.data.schema_version:
        envelope = decode_envelope(raw)
        payload = payload_of(envelope)  # upcasts, or raises UnknownEventError
        return StoredFact(**{**envelope.model_dump(), "data": payload}), payload
    return current, current.data


def payload_of(envelope: Envelope) -> Event:
    """The typed payload of an envelope, older schema versions upcast (`upcast`)."""
    data = upcast(envelope.type, envelope.schema_version, envelope.data)
    return CATALOG[envelope.type].model_validate(data)
