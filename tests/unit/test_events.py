"""Event schemas: envelopes survive storage, unknown or malformed ones are refused."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from pigeon_common import events as ev
from pigeon_common.jetstream import encode, subject_for

MAILBOX_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
CAMPAIGN_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
RECIPIENT_ID = uuid.UUID("00000000-0000-4000-8000-000000000003")
RUN_ID = uuid.UUID("00000000-0000-4000-8000-000000000004")
EVENT_ID = uuid.UUID("00000000-0000-4000-8000-0000000000ee")
OCCURRED_AT = datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=UTC)

CONFIG = ev.MailboxConfig(
    name="Newsletter",
    from_name="Zoë Pigeon",
    from_address="news@example.org",
    smtp=ev.ServerEndpoint(host="smtp.example.org", port=587, security="starttls", username="u"),
    imap=ev.ServerEndpoint(host="imap.example.org", port=993, security="tls", username="u"),
    sent_folder="Sent",
    bounce_folder="INBOX",
    rate_per_second=5,
    rate_per_hour=None,
    rate_per_day=10_000,
    append_to_sent="always",
)
OPTIONS = ev.SendOptions(batch_size=50, sleep_between_batches_sec=1.5)

# One example of every event in the catalog (a test below fails when one is missing).
USER_ID = uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7")
SAMPLES: dict[str, ev.Event] = {
    "mailbox.created": ev.MailboxCreated(mailbox_id=MAILBOX_ID, config=CONFIG),
    "mailbox.updated": ev.MailboxUpdated(
        mailbox_id=MAILBOX_ID, config=CONFIG, passwords_changed=True
    ),
    "mailbox.deleted": ev.MailboxDeleted(mailbox_id=MAILBOX_ID),
    "mailbox.shared": ev.MailboxShared(mailbox_id=MAILBOX_ID, user_id=USER_ID),
    "mailbox.unshared": ev.MailboxUnshared(mailbox_id=MAILBOX_ID, user_id=USER_ID),
    "mailbox.owner_changed": ev.MailboxOwnerChanged(mailbox_id=MAILBOX_ID, owner_id=USER_ID),
    "campaign.created": ev.CampaignCreated(
        campaign_id=CAMPAIGN_ID,
        name="Spring",
        subject="Hello {{ recipient.name }}",
        template_markdown="# Hi\n\nÇa va? {% if recipient.vip %}VIP{% endif %}",
        mailbox_id=MAILBOX_ID,
    ),
    "campaign.updated": ev.CampaignUpdated(
        campaign_id=CAMPAIGN_ID,
        name="Spring 2",
        subject="Hi",
        template_markdown="Body",
        mailbox_id=None,
        changed=["name", "mailbox_id"],
    ),
    "campaign.deleted": ev.CampaignDeleted(campaign_id=CAMPAIGN_ID),
    "campaign.shared": ev.CampaignShared(campaign_id=CAMPAIGN_ID, user_id=USER_ID),
    "campaign.unshared": ev.CampaignUnshared(campaign_id=CAMPAIGN_ID, user_id=USER_ID),
    "campaign.owner_changed": ev.CampaignOwnerChanged(campaign_id=CAMPAIGN_ID, owner_id=USER_ID),
    "recipients.added": ev.RecipientsAdded(
        campaign_id=CAMPAIGN_ID,
        recipients=[
            ev.RecipientData(
                recipient_id=RECIPIENT_ID,
                email="ann@example.org",
                name="Ann",
                attributes={"plan": "pro", "seats": 3, "ratio": 0.5, "vip": True, "x": None},
            ),
            ev.RecipientData(recipient_id=uuid.uuid4(), email="bob@example.org"),
        ],
        source="csv",
    ),
    "recipient.deleted": ev.RecipientDeleted(campaign_id=CAMPAIGN_ID, recipient_id=RECIPIENT_ID),
    "campaign.scheduled": ev.CampaignScheduled(
        campaign_id=CAMPAIGN_ID,
        send_at=datetime(2024, 6, 1, 8, 0, tzinfo=UTC),
        options=OPTIONS,
    ),
    "campaign.unscheduled": ev.CampaignUnscheduled(campaign_id=CAMPAIGN_ID),
    "campaign.sending_started": ev.CampaignSendingStarted(
        campaign_id=CAMPAIGN_ID,
        run_id=RUN_ID,
        recipients=120,
        chunks=3,
        options=OPTIONS,
        links=["https://example.org/a", "https://example.org/b?x=1&y=ç"],
    ),
    "campaign.paused": ev.CampaignPaused(
        campaign_id=CAMPAIGN_ID, reason="535 5.7.8 authentication failed"
    ),
    "campaign.resumed": ev.CampaignResumed(campaign_id=CAMPAIGN_ID, run_id=RUN_ID, chunks=2),
    "campaign.cancelled": ev.CampaignCancelled(campaign_id=CAMPAIGN_ID),
    "campaign.completed": ev.CampaignCompleted(
        campaign_id=CAMPAIGN_ID, sent=100, failed=12, unknown=1, suppressed=7
    ),
    "campaign.failed": ev.CampaignFailed(campaign_id=CAMPAIGN_ID, reason="chunk 2 kept failing"),
    "message.sent": ev.MessageSent(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        email="ann@example.org",
        message_id="<abc.123@example.org>",
        smtp_reply="250 2.0.0 Ok: queued as 4F2",
        appended=True,
    ),
    "message.failed": ev.MessageFailed(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        email="ann@example.org",
        smtp_code=550,
        smtp_reply="5.1.1 user unknown",
        hard_bounce=True,
    ),
    "message.unknown": ev.MessageUnknown(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        email="ann@example.org",
        reason="sender stopped before recording the outcome",
    ),
    "message.suppressed": ev.MessageSuppressed(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        email="ann@example.org",
        reason="unsubscribed",
    ),
    "sent_copies.filed": ev.SentCopiesFiled(
        campaign_id=CAMPAIGN_ID, mailbox_id=MAILBOX_ID, folder="Sent", recipient_ids=[RECIPIENT_ID]
    ),
    "sent_copies.pending": ev.SentCopiesPending(
        campaign_id=CAMPAIGN_ID,
        mailbox_id=MAILBOX_ID,
        recipient_ids=[RECIPIENT_ID],
        reason="connection refused",
    ),
    "address.suppressed": ev.AddressSuppressed(
        email="Ann@Example.org",
        mailbox_id=MAILBOX_ID,
        reason="hard_bounce",
        detail="550 5.1.1 user unknown",
    ),
    "address.unsuppressed": ev.AddressUnsuppressed(email="ann@example.org", mailbox_id=None),
    "message.opened": ev.MessageOpened(
        campaign_id=CAMPAIGN_ID, recipient_id=RECIPIENT_ID, machine=True, machine_reason="proxy"
    ),
    "link.clicked": ev.LinkClicked(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        link_index=0,
        url="https://example.org/",
        machine=False,
        user_agent="Mozilla/5.0",
    ),
    "recipient.unsubscribed": ev.RecipientUnsubscribed(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        email="ann@example.org",
        mailbox_id=MAILBOX_ID,
        method="one_click",
    ),
    "recipient.resubscribed": ev.RecipientResubscribed(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        email="ann@example.org",
        mailbox_id=MAILBOX_ID,
    ),
    "message.bounced": ev.MessageBounced(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        email="ann@example.org",
        mailbox_id=MAILBOX_ID,
        hard=True,
        status="5.1.1",
        action="failed",
        diagnostic="550 5.1.1 no such user",
        suppress=True,
        source=f"{MAILBOX_ID}:7:42",
        reason="user_unknown",
        evidence="diagnostic text: no such user",
    ),
    "message.deferred": ev.MessageDeferred(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        email="ann@example.org",
        status="4.2.2",
        diagnostic="mailbox full",
        source=f"{MAILBOX_ID}:7:43",
    ),
    "message.replied": ev.MessageReplied(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        from_address="ann@example.org",
        subject="Re: hello",
        reply_message_id="abc@example.org",
        source=f"{MAILBOX_ID}:7:44",
    ),
    "message.auto_replied": ev.MessageAutoReplied(
        campaign_id=CAMPAIGN_ID,
        recipient_id=RECIPIENT_ID,
        from_address="ann@example.org",
        subject="Out of office",
        reply_message_id="def@example.org",
        source=f"{MAILBOX_ID}:7:45",
    ),
    "inbound.skipped": ev.InboundSkipped(
        mailbox_id=MAILBOX_ID,
        folder="INBOX",
        uidvalidity=7,
        uid=46,
        kind="unparsed",
        reason="too large",
        source=f"{MAILBOX_ID}:7:46",
    ),
}


def test_every_catalog_event_has_a_sample() -> None:
    assert set(SAMPLES) == set(ev.CATALOG)


def test_catalog_keys_are_the_event_types() -> None:
    for event_type, cls in ev.CATALOG.items():
        assert cls.type == event_type
        aggregate, _, verb = event_type.partition(".")
        assert aggregate and verb and "." not in verb


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_envelope_round_trip(event_type: str) -> None:
    event = SAMPLES[event_type]
    envelope = ev.envelope_for(
        event,
        str(CAMPAIGN_ID),
        event_id=EVENT_ID,
        causation_id="request-42",
        actor="user-7",
        occurred_at=OCCURRED_AT,
    )
    raw = encode(envelope)
    assert isinstance(raw, bytes)
    json.loads(raw)  # plain JSON on the wire

    decoded = ev.decode_envelope(raw)
    assert decoded == envelope
    assert decoded.event_id == EVENT_ID
    assert decoded.type == event_type
    assert decoded.schema_version == type(event).schema_version
    assert decoded.occurred_at == OCCURRED_AT
    assert decoded.aggregate_id == str(CAMPAIGN_ID)
    assert decoded.causation_id == "request-42"
    assert decoded.actor == "user-7"

    payload = ev.payload_of(decoded)
    assert type(payload) is type(event)
    assert payload == event


def test_subject_is_prefix_and_type() -> None:
    envelope = ev.envelope_for(SAMPLES["campaign.created"], str(CAMPAIGN_ID))
    assert subject_for(envelope) == "pigeon.events.campaign.created"


def test_envelope_defaults_are_fresh_ids_and_aware_now() -> None:
    event = SAMPLES["campaign.deleted"]
    before = datetime.now(UTC)
    first = ev.envelope_for(event, str(CAMPAIGN_ID))
    second = ev.envelope_for(event, str(CAMPAIGN_ID))
    after = datetime.now(UTC)
    assert first.event_id != second.event_id
    assert first.occurred_at.tzinfo is not None
    assert before <= first.occurred_at <= after
    assert first.causation_id is None and first.actor is None


def test_occurred_at_keeps_the_instant_across_time_zones() -> None:
    paris = timezone(timedelta(hours=2))
    at = datetime(2024, 5, 17, 11, 30, tzinfo=paris)
    envelope = ev.envelope_for(SAMPLES["campaign.deleted"], "a", occurred_at=at)
    assert ev.decode_envelope(encode(envelope)).occurred_at == at


def _stored(event_type: str, **changes: object) -> bytes:
    envelope = ev.envelope_for(SAMPLES[event_type], "agg", occurred_at=OCCURRED_AT)
    body = envelope.model_dump(mode="json")
    body.update(changes)
    return json.dumps(body).encode()


def test_unknown_type_is_refused() -> None:
    envelope = ev.decode_envelope(_stored("campaign.deleted", type="campaign.exploded"))
    with pytest.raises(ev.UnknownEventError) as caught:
        ev.payload_of(envelope)
    assert caught.value.event_type == "campaign.exploded"
    assert caught.value.schema_version == 1


@pytest.mark.parametrize("version", [0, 2, 99])
def test_unknown_schema_version_is_refused(version: int) -> None:
    envelope = ev.decode_envelope(_stored("campaign.deleted", schema_version=version))
    with pytest.raises(ev.UnknownEventError) as caught:
        ev.payload_of(envelope)
    assert caught.value.event_type == "campaign.deleted"
    assert caught.value.schema_version == version


def _bounced_v1() -> bytes:
    body = json.loads(_stored("message.bounced", schema_version=1))
    del body["data"]["reason"], body["data"]["evidence"]
    return json.dumps(body).encode()


def test_a_version_1_bounce_is_upcast_to_reason_unknown() -> None:
    fact, event = ev.decode_event(_bounced_v1())
    assert isinstance(event, ev.MessageBounced)
    assert (event.reason, event.evidence) == ("unknown", "")
    assert fact.data == event
    upcast = ev.payload_of(ev.decode_envelope(_bounced_v1()))
    assert upcast == event


def test_the_upcaster_is_pure_and_keeps_every_field() -> None:
    data = {"email": "a@example.org", "hard": True}
    assert ev.upcast_message_bounced_v1_v2(data) == {**data, "reason": "unknown", "evidence": ""}
    assert data == {"email": "a@example.org", "hard": True}


def test_a_bounce_newer_than_the_catalog_is_refused() -> None:
    with pytest.raises(ev.UnknownEventError):
        ev.decode_event(_stored("message.bounced", schema_version=3))


def test_extra_envelope_field_is_refused() -> None:
    with pytest.raises(ValidationError):
        ev.decode_envelope(_stored("campaign.deleted", priority="high"))


def test_missing_envelope_field_is_refused() -> None:
    body = json.loads(_stored("campaign.deleted"))
    del body["occurred_at"]
    with pytest.raises(ValidationError):
        ev.decode_envelope(json.dumps(body).encode())


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_extra_payload_field_is_refused(event_type: str) -> None:
    data = SAMPLES[event_type].model_dump(mode="json")
    envelope = ev.decode_envelope(_stored(event_type, data={**data, "smtp_password": "hunter2"}))
    with pytest.raises(ValidationError):
        ev.payload_of(envelope)


def test_extra_field_in_nested_shapes_is_refused() -> None:
    data = SAMPLES["mailbox.created"].model_dump(mode="json")
    data["config"]["smtp"]["password"] = "hunter2"
    envelope = ev.decode_envelope(_stored("mailbox.created", data=data))
    with pytest.raises(ValidationError):
        ev.payload_of(envelope)

    data = SAMPLES["recipients.added"].model_dump(mode="json")
    data["recipients"][0]["unsubscribed"] = True
    envelope = ev.decode_envelope(_stored("recipients.added", data=data))
    with pytest.raises(ValidationError):
        ev.payload_of(envelope)


def test_extra_keyword_is_refused_when_building_an_event() -> None:
    with pytest.raises(ValidationError):
        ev.CampaignDeleted(campaign_id=CAMPAIGN_ID, reason="x")  # type: ignore[call-arg]


def test_events_and_envelopes_are_frozen() -> None:
    event = SAMPLES["campaign.deleted"]
    with pytest.raises(ValidationError):
        event.campaign_id = uuid.uuid4()  # type: ignore[misc]
    envelope = ev.envelope_for(event, "agg")
    with pytest.raises(ValidationError):
        envelope.type = "campaign.created"  # type: ignore[misc]


def test_events_never_carry_a_password_field() -> None:
    def field_names(model: type) -> set[str]:
        names: set[str] = set()
        for name, info in model.model_fields.items():  # type: ignore[attr-defined]
            names.add(name)
            for inner in (ev.MailboxConfig, ev.ServerEndpoint, ev.RecipientData, ev.SendOptions):
                if inner.__name__ in str(info.annotation):
                    names |= field_names(inner)
        return names

    for cls in ev.CATALOG.values():
        assert not {n for n in field_names(cls) if n.endswith(("password", "secret", "key"))}


def test_nested_shapes_keep_their_defaults() -> None:
    assert ev.SendOptions(batch_size=10).sleep_between_batches_sec == 0.0
    config = CONFIG.model_dump(exclude={"append_to_sent"})
    assert ev.MailboxConfig.model_validate(config).append_to_sent == "auto"


def test_append_to_sent_is_one_of_three_modes() -> None:
    data = SAMPLES["mailbox.created"].model_dump(mode="json")
    data["config"]["append_to_sent"] = "sometimes"
    envelope = ev.decode_envelope(_stored("mailbox.created", data=data))
    with pytest.raises(ValidationError):
        ev.payload_of(envelope)


def test_address_suppressed_reason_is_one_of_three() -> None:
    data = SAMPLES["address.suppressed"].model_dump(mode="json")
    data["reason"] = "spam_complaint"
    envelope = ev.decode_envelope(_stored("address.suppressed", data=data))
    with pytest.raises(ValidationError):
        ev.payload_of(envelope)


def test_a_suppression_from_every_mailbox_round_trips_as_null() -> None:
    event = ev.AddressSuppressed(email="ann@example.org", mailbox_id=None, reason="manual")
    assert event.model_dump(mode="json")["mailbox_id"] is None
    assert event.detail == ""
    envelope = ev.envelope_for(event, "ann@example.org", occurred_at=OCCURRED_AT)
    assert ev.payload_of(ev.decode_envelope(encode(envelope))) == event


def test_scheduled_send_at_keeps_the_instant() -> None:
    paris = timezone(timedelta(hours=2))
    event = ev.CampaignScheduled(
        campaign_id=CAMPAIGN_ID,
        send_at=datetime(2024, 6, 1, 10, 0, tzinfo=paris),
        options=OPTIONS,
    )
    envelope = ev.decode_envelope(encode(ev.envelope_for(event, str(CAMPAIGN_ID))))
    payload = ev.payload_of(envelope)
    assert isinstance(payload, ev.CampaignScheduled)
    assert payload.send_at == datetime(2024, 6, 1, 8, 0, tzinfo=UTC)


def test_an_event_around_encoded_data_decodes_as_the_model_would_store_it() -> None:
    campaign = uuid.uuid4()
    recipients = [
        {"recipient_id": str(uuid.uuid4()), "email": "a@example.org", "name": "Ä", "attributes": {}}
    ]
    data = {"campaign_id": str(campaign), "recipients": recipients, "source": "csv"}
    built = ev.encoded_with_data(
        ev.RecipientsAdded, json.dumps(data).encode(), str(campaign), actor="someone"
    )
    stored = ev.decode_envelope(built.payload)
    assert (built.event_type, built.msg_id) == ("recipients.added", str(stored.event_id))
    assert stored.type == "recipients.added" and stored.actor == "someone"
    assert stored.aggregate_id == str(campaign) and stored.data == data
    assert ev.payload_of(stored) == ev.RecipientsAdded.model_validate(data)
