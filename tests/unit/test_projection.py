"""Events to read-model writes, without a database."""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pigeon_common import events as ev
from pigeon_common.validation import address_key
from pigeon_projector import message_states
from pigeon_projector.projection import (
    NIL_MAILBOX,
    OUTCOME_RANK,
    SQL,
    AddedRecipients,
    Write,
    added_recipients,
    group_writes,
    rows_of,
    table_of,
    writes_for,
)

MAILBOX_ID = uuid.UUID("10000000-0000-4000-8000-000000000001")
CAMPAIGN_ID = uuid.UUID("10000000-0000-4000-8000-000000000002")
R1 = uuid.UUID("10000000-0000-4000-8000-000000000011")
R2 = uuid.UUID("10000000-0000-4000-8000-000000000012")
R3 = uuid.UUID("10000000-0000-4000-8000-000000000013")
RUN_ID = uuid.UUID("10000000-0000-4000-8000-000000000021")
# Far from "now", so a write that took the clock instead of the envelope would show.
AT = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
SEQ = 4242

CONFIG = ev.MailboxConfig(
    name="Main",
    from_name="Pigeon",
    from_address="news@example.org",
    smtp=ev.ServerEndpoint(host="smtp.example.org", port=465, security="tls", username="su"),
    imap=ev.ServerEndpoint(host="imap.example.org", port=143, security="starttls", username="iu"),
    sent_folder="Sent",
    bounce_folder="Bounces",
    rate_per_second=1,
    rate_per_hour=100,
    rate_per_day=None,
    append_to_sent="never",
)
MAILBOX_ARGS = (
    MAILBOX_ID,
    "Main",
    "Pigeon",
    "news@example.org",
    "smtp.example.org",
    465,
    "tls",
    "su",
    "imap.example.org",
    143,
    "starttls",
    "iu",
    "Sent",
    "Bounces",
    1,
    100,
    None,
    AT,
    SEQ,
    "never",
)
SEND_AT = datetime(2001, 3, 1, 9, 0, tzinfo=UTC)
OPTIONS = ev.SendOptions(batch_size=25, sleep_between_batches_sec=2.5)


EVENT_ID = uuid.UUID("10000000-0000-4000-8000-000000000031")


def _writes(event: ev.Event, seq: int = SEQ) -> list[Write]:
    # Decoded from storage, as the projector sees it.
    envelope = ev.envelope_for(event, "agg", occurred_at=AT, event_id=EVENT_ID)
    return writes_for(seq, ev.decode_envelope(envelope.model_dump_json().encode()))


def _placeholders(sql: str) -> int:
    return max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)


def _reply_row(kind: str, subject: str, source: str) -> Any:
    return (
        SQL.record_delivery_event,
        (
            f"{kind}:{source}:{R1}",
            CAMPAIGN_ID,
            R1,
            "ann@example.org",
            None,
            kind,
            False,
            "",
            "",
            "",
            "ann@example.org",
            subject,
            source,
            AT,
            False,
            "",
        ),
    )


def _status(status: str, reason: str = "", run_id: Any = None, chunks: Any = None) -> Any:
    return (SQL.set_campaign_status, (CAMPAIGN_ID, status, reason, AT, SEQ, run_id, chunks))


def _outcome(
    status: str,
    rank: int,
    *,
    message_id: str | None = None,
    smtp_code: int | None = None,
    smtp_reply: str = "",
    hard_bounce: bool = False,
    appended: bool = False,
    reason: str = "",
) -> Any:
    args = (CAMPAIGN_ID, R1, "Ann@example.org", status, rank, message_id, smtp_code)
    return (
        SQL.record_outcome,
        (*args, smtp_reply, hard_bounce, appended, reason, AT, SEQ),
    )


OWNER_ID = uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7")
CASES: dict[str, tuple[ev.Event, list[tuple[str, tuple[Any, ...]]]]] = {
    "mailbox.created": (
        ev.MailboxCreated(mailbox_id=MAILBOX_ID, config=CONFIG, owner_id=OWNER_ID),
        [(SQL.upsert_mailbox, MAILBOX_ARGS), (SQL.set_mailbox_owner, (MAILBOX_ID, OWNER_ID))],
    ),
    "mailbox.updated": (
        ev.MailboxUpdated(mailbox_id=MAILBOX_ID, config=CONFIG, passwords_changed=True),
        [(SQL.upsert_mailbox, MAILBOX_ARGS)],
    ),
    "mailbox.deleted": (
        ev.MailboxDeleted(mailbox_id=MAILBOX_ID),
        [(SQL.delete_mailbox_shares, (MAILBOX_ID,)), (SQL.delete_mailbox, (MAILBOX_ID,))],
    ),
    "mailbox.shared": (
        ev.MailboxShared(mailbox_id=MAILBOX_ID, user_id=OWNER_ID),
        [(SQL.insert_mailbox_share, (MAILBOX_ID, OWNER_ID))],
    ),
    "mailbox.unshared": (
        ev.MailboxUnshared(mailbox_id=MAILBOX_ID, user_id=OWNER_ID),
        [(SQL.delete_mailbox_share, (MAILBOX_ID, OWNER_ID))],
    ),
    "mailbox.owner_changed": (
        ev.MailboxOwnerChanged(mailbox_id=MAILBOX_ID, owner_id=OWNER_ID),
        [(SQL.set_mailbox_owner, (MAILBOX_ID, OWNER_ID))],
    ),
    "campaign.shared": (
        ev.CampaignShared(campaign_id=CAMPAIGN_ID, user_id=OWNER_ID),
        [(SQL.insert_campaign_share, (CAMPAIGN_ID, OWNER_ID))],
    ),
    "campaign.unshared": (
        ev.CampaignUnshared(campaign_id=CAMPAIGN_ID, user_id=OWNER_ID),
        [(SQL.delete_campaign_share, (CAMPAIGN_ID, OWNER_ID))],
    ),
    "campaign.owner_changed": (
        ev.CampaignOwnerChanged(campaign_id=CAMPAIGN_ID, owner_id=OWNER_ID),
        [(SQL.set_campaign_owner, (CAMPAIGN_ID, OWNER_ID))],
    ),
    "campaign.created": (
        ev.CampaignCreated(
            campaign_id=CAMPAIGN_ID,
            name="Spring",
            subject="Hello",
            template_markdown="# Hi",
            mailbox_id=MAILBOX_ID,
            owner_id=OWNER_ID,
        ),
        [
            (
                SQL.insert_campaign,
                (CAMPAIGN_ID, "Spring", "Hello", "# Hi", MAILBOX_ID, AT, SEQ, OWNER_ID, None),
            )
        ],
    ),
    "campaign.updated": (
        ev.CampaignUpdated(
            campaign_id=CAMPAIGN_ID,
            name="Summer",
            subject="Hey",
            template_markdown="Body",
            mailbox_id=None,
            changed=["name", "subject"],
        ),
        [(SQL.update_campaign, (CAMPAIGN_ID, "Summer", "Hey", "Body", None, AT, SEQ))],
    ),
    "campaign.deleted": (
        ev.CampaignDeleted(campaign_id=CAMPAIGN_ID),
        [
            (SQL.delete_campaign_shares, (CAMPAIGN_ID,)),
            (SQL.delete_campaign_recipients, (CAMPAIGN_ID,)),
            (SQL.delete_campaign, (CAMPAIGN_ID,)),
        ],
    ),
    "recipients.added": (
        ev.RecipientsAdded(
            campaign_id=CAMPAIGN_ID,
            recipients=[
                ev.RecipientData(recipient_id=R1, email="a@example.org", name="Ann"),
                ev.RecipientData(
                    recipient_id=R2, email="b@example.org", attributes={"plan": "pro", "n": 2}
                ),
                ev.RecipientData(recipient_id=R3, email="c@example.org", name="Cy"),
            ],
            source="bulk",
        ),
        [
            (
                SQL.upsert_recipients,
                (
                    AddedRecipients(
                        CAMPAIGN_ID,
                        [R1, R2, R3],
                        ["a@example.org", "b@example.org", "c@example.org"],
                        ["Ann", "", "Cy"],
                        [{}, {"plan": "pro", "n": 2}, {}],
                        AT,
                    ),
                ),
            ),
        ],
    ),
    "recipient.deleted": (
        ev.RecipientDeleted(campaign_id=CAMPAIGN_ID, recipient_id=R2),
        [(SQL.delete_recipient, (CAMPAIGN_ID, R2))],
    ),
    "campaign.scheduled": (
        ev.CampaignScheduled(campaign_id=CAMPAIGN_ID, send_at=SEND_AT, options=OPTIONS),
        [(SQL.schedule_campaign, (CAMPAIGN_ID, SEND_AT, 25, 2.5, AT, SEQ))],
    ),
    "campaign.unscheduled": (
        ev.CampaignUnscheduled(campaign_id=CAMPAIGN_ID),
        [(SQL.unschedule_campaign, (CAMPAIGN_ID, AT, SEQ))],
    ),
    "campaign.sending_started": (
        ev.CampaignSendingStarted(
            campaign_id=CAMPAIGN_ID,
            run_id=RUN_ID,
            recipients=60,
            chunks=3,
            options=OPTIONS,
            links=["https://example.org/a", "https://example.org/b"],
        ),
        [
            (SQL.start_campaign, (CAMPAIGN_ID, RUN_ID, 25, 2.5, AT, SEQ, 3)),
            (SQL.insert_campaign_link, (CAMPAIGN_ID, 0, "https://example.org/a")),
            (SQL.insert_campaign_link, (CAMPAIGN_ID, 1, "https://example.org/b")),
        ],
    ),
    "campaign.paused": (
        ev.CampaignPaused(campaign_id=CAMPAIGN_ID, reason="535 auth failed"),
        [_status("paused", "535 auth failed")],
    ),
    "campaign.resumed": (
        ev.CampaignResumed(campaign_id=CAMPAIGN_ID, run_id=RUN_ID, chunks=2),
        [_status("sending", "", RUN_ID, 2)],
    ),
    "campaign.cancelled": (
        ev.CampaignCancelled(campaign_id=CAMPAIGN_ID),
        [_status("cancelled")],
    ),
    "campaign.completed": (
        ev.CampaignCompleted(campaign_id=CAMPAIGN_ID, sent=5, failed=1, unknown=0, suppressed=2),
        [_status("done")],
    ),
    "campaign.failed": (
        ev.CampaignFailed(campaign_id=CAMPAIGN_ID, reason="chunk kept failing"),
        [_status("failed", "chunk kept failing")],
    ),
    "message.sent": (
        ev.MessageSent(
            campaign_id=CAMPAIGN_ID,
            recipient_id=R1,
            email="Ann@example.org",
            message_id="<m1@example.org>",
            smtp_reply="250 2.0.0 Ok",
            appended=True,
        ),
        [
            _outcome(
                "sent", 4, message_id="<m1@example.org>", smtp_reply="250 2.0.0 Ok", appended=True
            )
        ],
    ),
    "message.failed": (
        ev.MessageFailed(
            campaign_id=CAMPAIGN_ID,
            recipient_id=R1,
            email="Ann@example.org",
            smtp_code=550,
            smtp_reply="5.1.1 user unknown",
            hard_bounce=True,
        ),
        [_outcome("failed", 3, smtp_code=550, smtp_reply="5.1.1 user unknown", hard_bounce=True)],
    ),
    "message.unknown": (
        ev.MessageUnknown(
            campaign_id=CAMPAIGN_ID, recipient_id=R1, email="Ann@example.org", reason="died"
        ),
        [_outcome("unknown", 1, reason="died")],
    ),
    "message.suppressed": (
        ev.MessageSuppressed(
            campaign_id=CAMPAIGN_ID,
            recipient_id=R1,
            email="Ann@example.org",
            reason="unsubscribed",
        ),
        [_outcome("suppressed", 2, reason="unsubscribed")],
    ),
    "sent_copies.filed": (
        ev.SentCopiesFiled(
            campaign_id=CAMPAIGN_ID, mailbox_id=MAILBOX_ID, folder="Sent", recipient_ids=[R1]
        ),
        [(SQL.mark_copies_filed, (CAMPAIGN_ID, [R1]))],
    ),
    "sent_copies.pending": (
        ev.SentCopiesPending(
            campaign_id=CAMPAIGN_ID, mailbox_id=MAILBOX_ID, recipient_ids=[R1], reason="down"
        ),
        [(SQL.mark_copies_pending, (CAMPAIGN_ID, [R1]))],
    ),
    "address.suppressed": (
        ev.AddressSuppressed(
            email="Ann@Example.ORG", mailbox_id=MAILBOX_ID, reason="hard_bounce", detail="550"
        ),
        [
            (
                SQL.add_suppression,
                ("ann@example.org", MAILBOX_ID, "Ann@Example.ORG", "hard_bounce", "550", AT),
            )
        ],
    ),
    "address.unsuppressed": (
        ev.AddressUnsuppressed(email="Ann@Example.ORG", mailbox_id=MAILBOX_ID),
        [(SQL.remove_suppression, ("ann@example.org", MAILBOX_ID, None))],
    ),
    "message.opened": (
        ev.MessageOpened(
            campaign_id=CAMPAIGN_ID, recipient_id=R1, machine=True, machine_reason="apple_mpp"
        ),
        [(SQL.record_open, (EVENT_ID, CAMPAIGN_ID, R1, AT, True, "apple_mpp", ""))],
    ),
    "link.clicked": (
        ev.LinkClicked(
            campaign_id=CAMPAIGN_ID,
            recipient_id=R1,
            link_index=2,
            url="https://example.org/x",
            machine=False,
            user_agent="UA",
        ),
        [
            (
                SQL.record_click,
                (EVENT_ID, CAMPAIGN_ID, R1, 2, "https://example.org/x", AT, False, "", "UA"),
            )
        ],
    ),
    "recipient.unsubscribed": (
        ev.RecipientUnsubscribed(
            campaign_id=CAMPAIGN_ID,
            recipient_id=R1,
            email="Ann@Example.ORG",
            mailbox_id=MAILBOX_ID,
            method="one_click",
        ),
        [
            (SQL.record_unsubscribe, (CAMPAIGN_ID, R1, "Ann@Example.ORG", "one_click", AT)),
            (
                SQL.add_suppression,
                ("ann@example.org", MAILBOX_ID, "Ann@Example.ORG", "unsubscribed", "one_click", AT),
            ),
        ],
    ),
    "recipient.resubscribed": (
        ev.RecipientResubscribed(
            campaign_id=CAMPAIGN_ID, recipient_id=R1, email="Ann@Example.ORG", mailbox_id=None
        ),
        [
            (SQL.record_resubscribe, (CAMPAIGN_ID, R1, AT)),
            (SQL.remove_unsubscribe_suppression, ("ann@example.org", NIL_MAILBOX)),
        ],
    ),
    "message.bounced": (
        ev.MessageBounced(
            campaign_id=CAMPAIGN_ID,
            recipient_id=R1,
            email="ann@example.org",
            mailbox_id=MAILBOX_ID,
            hard=True,
            status="5.1.1",
            action="failed",
            diagnostic="550 no such user",
            suppress=True,
            source="m:1:9",
            reason="user_unknown",
            evidence="diagnostic text: no such user",
        ),
        [
            (
                SQL.record_delivery_event,
                (
                    f"bounced:m:1:9:{R1}",
                    CAMPAIGN_ID,
                    R1,
                    "ann@example.org",
                    MAILBOX_ID,
                    "bounced",
                    True,
                    "5.1.1",
                    "failed",
                    "550 no such user",
                    "",
                    "",
                    "m:1:9",
                    AT,
                    False,
                    "user_unknown",
                ),
            ),
            (
                SQL.add_suppression,
                (
                    "ann@example.org",
                    MAILBOX_ID,
                    "ann@example.org",
                    "hard_bounce",
                    "5.1.1 550 no such user",
                    AT,
                ),
            ),
        ],
    ),
    "message.deferred": (
        ev.MessageDeferred(
            campaign_id=CAMPAIGN_ID,
            recipient_id=R1,
            email="ann@example.org",
            status="4.2.2",
            diagnostic="full",
            source="m:1:10",
        ),
        [
            (
                SQL.record_delivery_event,
                (
                    f"deferred:m:1:10:{R1}",
                    CAMPAIGN_ID,
                    R1,
                    "ann@example.org",
                    None,
                    "deferred",
                    False,
                    "4.2.2",
                    "",
                    "full",
                    "",
                    "",
                    "m:1:10",
                    AT,
                    False,
                    "",
                ),
            )
        ],
    ),
    "message.replied": (
        ev.MessageReplied(
            campaign_id=CAMPAIGN_ID,
            recipient_id=R1,
            from_address="ann@example.org",
            subject="Re: hi",
            reply_message_id="r@x",
            source="m:1:11",
        ),
        [_reply_row("replied", "Re: hi", "m:1:11")],
    ),
    "message.auto_replied": (
        ev.MessageAutoReplied(
            campaign_id=CAMPAIGN_ID,
            recipient_id=R1,
            from_address="ann@example.org",
            subject="Out of office",
            reply_message_id="r@x",
            source="m:1:12",
        ),
        [_reply_row("auto_replied", "Out of office", "m:1:12")],
    ),
    "inbound.skipped": (
        ev.InboundSkipped(
            mailbox_id=MAILBOX_ID,
            folder="Bounces",
            uidvalidity=1,
            uid=13,
            kind="unparsed",
            reason="too large",
            source="m:1:13",
        ),
        [
            (
                SQL.record_inbound_skipped,
                ("m:1:13", MAILBOX_ID, "Bounces", 1, 13, "unparsed", "too large", AT),
            )
        ],
    ),
}


def test_every_catalog_event_has_a_case() -> None:
    assert set(CASES) == set(ev.CATALOG)


@pytest.mark.parametrize("event_type", sorted(CASES))
def test_writes_for_each_event(event_type: str) -> None:
    event, expected = CASES[event_type]
    assert [(w.sql, w.args) for w in _writes(event)] == expected


@pytest.mark.parametrize("event_type", sorted(CASES))
def test_args_fill_every_placeholder(event_type: str) -> None:
    # As the statements run: an import's rows become upsert-recipients' arrays.
    for sql, batch in group_writes(_writes(CASES[event_type][0])):
        for args in batch:
            assert _placeholders(sql) == len(args), sql


@pytest.mark.parametrize("event_type", sorted(CASES))
def test_time_comes_from_the_envelope_never_the_clock(event_type: str) -> None:
    event = CASES[event_type][0]
    # Times the payload carries (such as send_at) are facts of the event, not the clock.
    carried = {v for v in event.__dict__.values() if isinstance(v, datetime)}
    for write in _writes(event):
        assert "now()" not in write.sql.lower()
        assert "current_timestamp" not in write.sql.lower()
        times = [a for a in write.args if isinstance(a, datetime) and a not in carried]
        assert all(t == AT for t in times)


def test_every_projection_query_lowers_to_sql_without_comments() -> None:
    for name, sql in SQL.items():
        assert sql and not sql.endswith(";"), name
        assert not any(line.lstrip().startswith("--") for line in sql.splitlines()), name


def test_campaign_deleted_removes_recipients_before_the_campaign() -> None:
    writes = _writes(ev.CampaignDeleted(campaign_id=CAMPAIGN_ID))
    assert [w.sql for w in writes] == [
        SQL.delete_campaign_shares,
        SQL.delete_campaign_recipients,
        SQL.delete_campaign,
    ]
    assert "recipients" in writes[1].sql and "campaigns" in writes[2].sql


def test_recipients_added_gives_one_write_of_every_recipient() -> None:
    recipients = [
        ev.RecipientData(recipient_id=uuid.uuid4(), email=f"r{i}@example.org") for i in range(250)
    ]
    (write,) = _writes(ev.RecipientsAdded(campaign_id=CAMPAIGN_ID, recipients=recipients))
    added = added_recipients(write)
    assert added is not None and rows_of(write) == 250
    assert [row[1] for row in added.rows()] == [r.recipient_id for r in recipients]
    assert {row[5] for row in added.rows()} == {AT}


def test_recipients_added_with_no_recipient_writes_nothing() -> None:
    assert _writes(ev.RecipientsAdded(campaign_id=CAMPAIGN_ID, recipients=[])) == []


def test_the_sequence_is_the_one_given() -> None:
    event = ev.CampaignCreated(
        campaign_id=CAMPAIGN_ID, name="n", subject="s", template_markdown="t", mailbox_id=None
    )
    assert _writes(event, seq=1)[0].args[6] == 1
    assert _writes(event, seq=987_654)[0].args[6] == 987_654


def test_unknown_event_raises() -> None:
    envelope = ev.Envelope(
        event_id=uuid.uuid4(),
        type="campaign.exploded",
        schema_version=1,
        occurred_at=AT,
        aggregate_id="agg",
        data={},
    )
    with pytest.raises(ev.UnknownEventError):
        writes_for(1, envelope)


INS_A, UPD_A, UPD_B, DEL_C = (
    "INSERT INTO a (x) VALUES ($1)",
    "UPDATE a SET x = $1",
    "UPDATE b SET x = $1",
    "DELETE FROM c WHERE x = $1",
)


def test_group_writes_keeps_each_tables_order_and_merges_across_tables() -> None:
    writes = [
        Write(INS_A, (1,)),
        Write(INS_A, (2,)),
        Write(UPD_B, (3,)),
        Write(INS_A, (4,)),
        Write(DEL_C, (5,)),
        Write(UPD_B, (6,)),
        Write(UPD_A, (7,)),
        Write(INS_A, (8,)),
    ]
    assert group_writes(writes) == [
        (INS_A, [(1,), (2,), (4,)]),
        (UPD_A, [(7,)]),
        (INS_A, [(8,)]),
        (UPD_B, [(3,), (6,)]),
        (DEL_C, [(5,)]),
    ]


def test_table_of_names_the_written_table() -> None:
    assert table_of(SQL.upsert_recipient) == "recipients"
    assert table_of(SQL.set_campaign_status) == "campaigns"
    assert table_of(SQL.delete_campaign_recipients) == "recipients"
    assert table_of(SQL.upsert_recipients) == "recipients"  # it writes the states too
    with pytest.raises(ValueError, match="single-table"):
        table_of("SELECT 1")


def test_a_deleted_campaign_readded_keeps_its_states_after_the_deletion() -> None:
    """The import's statement writes message_states and campaign_counters, so a campaign's
    deletion of its states (stream order: first) must run before it in one batch."""
    campaign = uuid.uuid4()
    writes = _writes(ev.CampaignDeleted(campaign_id=campaign))
    writes += message_states.writes_for(ev.CampaignDeleted(campaign_id=campaign))
    writes += _writes(
        ev.RecipientsAdded(
            campaign_id=campaign,
            recipients=[ev.RecipientData(recipient_id=uuid.uuid4(), email="a@example.org")],
        )
    )
    order = [sql for sql, _ in group_writes(writes)]
    upsert = order.index(SQL.upsert_recipients)
    assert order.index(message_states.STATES_SQL.delete_campaign_states) < upsert
    assert order.index(message_states.STATES_SQL.delete_campaign_counters) < upsert


def test_group_writes_of_nothing_is_nothing() -> None:
    assert group_writes([]) == []


def test_group_writes_keeps_every_argument_once() -> None:
    statements = [INS_A, UPD_A, UPD_B, DEL_C]
    writes = [Write(statements[i * 7 % 4], (i,)) for i in range(30)]
    groups = group_writes(writes)
    flat = [(sql, args) for sql, batch in groups for args in batch]
    assert sorted(flat) == sorted((w.sql, w.args) for w in writes)
    for table in ("a", "b", "c"):
        in_order = [w.args for w in writes if table_of(w.sql) == table]
        assert [args for sql, args in flat if table_of(sql) == table] == in_order
    for (sql_a, _), (sql_b, _) in itertools.pairwise(groups):
        assert sql_a != sql_b


def test_group_writes_of_a_real_batch() -> None:
    created = CASES["campaign.created"][0]
    added = CASES["recipients.added"][0]
    deleted = CASES["recipient.deleted"][0]
    writes = _writes(created) + _writes(added) + _writes(deleted)
    groups = group_writes(writes)
    # The recipients' run folds: R2 is deleted, so only R1 and R3 are upserted.
    assert groups == [
        (SQL.insert_campaign, [_writes(created)[0].args]),
        (SQL.delete_recipients, [([CAMPAIGN_ID], [R2])]),
        (
            SQL.upsert_recipients,
            [
                (
                    [CAMPAIGN_ID, CAMPAIGN_ID],
                    [R1, R3],
                    ["a@example.org", "c@example.org"],
                    ["Ann", "Cy"],
                    ["{}", "{}"],
                    [AT, AT],
                    [AT, AT],
                )
            ],
        ),
    ]


def _added(at: datetime, *rows: tuple[uuid.UUID, str, dict[str, Any]]) -> Write:
    bulk = AddedRecipients(
        CAMPAIGN_ID,
        [rid for rid, _, _ in rows],
        [f"{rid.int}@example.org" for rid, _, _ in rows],
        [name for _, name, _ in rows],
        [attributes for _, _, attributes in rows],
        at,
    )
    return Write(SQL.upsert_recipients, (bulk,))


def test_an_import_repeating_a_recipient_folds_it_as_one_by_one_upserts() -> None:
    from pigeon_projector.projection import fold_recipient_writes

    later = AT + timedelta(seconds=1)
    writes = [_added(AT, (R1, "Ann", {"a": 1}), (R2, "Bo", {})), _added(later, (R1, "", {"b": 2}))]
    assert fold_recipient_writes(writes) == [
        (
            SQL.upsert_recipients,
            [
                (
                    [CAMPAIGN_ID, CAMPAIGN_ID],
                    [R1, R2],
                    [f"{R1.int}@example.org", f"{R2.int}@example.org"],
                    ["Ann", "Bo"],
                    ['{"a":1,"b":2}', "{}"],
                    [AT, AT],
                    [later, AT],
                )
            ],
        )
    ]


def test_an_import_among_single_writes_folds_with_them() -> None:
    from pigeon_projector.projection import fold_recipient_writes

    writes = [
        _added(AT, (R3, "Cy", {})),  # then deleted: gone
        Write(SQL.delete_recipient, (CAMPAIGN_ID, R1)),
        Write(SQL.delete_recipient, (CAMPAIGN_ID, R3)),
        _added(AT, (R1, "Ann", {})),  # deleted, then added again
        _upsert(R2, "b", {}, AT),
    ]
    groups = fold_recipient_writes(writes)
    # One statement of each kind for the whole run, as for single writes.
    assert [sql for sql, _ in groups] == [SQL.delete_recipients, SQL.upsert_recipients]
    assert [args[0][1] for _, args in groups] == [[R1, R3], [R1, R2]]


def _upsert(rid: uuid.UUID, name: str, attributes: dict[str, Any], at: datetime) -> Write:
    return Write(
        SQL.upsert_recipient, (CAMPAIGN_ID, rid, f"{name}@example.org", name, attributes, at)
    )


def test_fold_recipient_writes_leaves_the_rows_one_by_one_writes_leave() -> None:
    from pigeon_projector.projection import fold_recipient_writes

    later = AT + timedelta(seconds=1)
    writes = [
        _upsert(R1, "a", {"k": 1}, AT),  # then deleted: gone, not upserted
        Write(SQL.delete_recipient, (CAMPAIGN_ID, R1)),
        _upsert(R2, "b", {"k": 1}, AT),  # deleted, then added again: fresh
        Write(SQL.delete_recipient, (CAMPAIGN_ID, R2)),
        _upsert(R2, "b", {"j": 2}, later),
        _upsert(R3, "c", {"k": 1}, AT),  # two upserts merge
        _upsert(R3, "", {"k": 3}, later),
        Write(SQL.delete_campaign_recipients, (CAMPAIGN_ID,)),  # ends the run
        _upsert(R1, "a", {}, later),
    ]
    assert fold_recipient_writes(writes) == [
        (SQL.delete_recipients, [([CAMPAIGN_ID, CAMPAIGN_ID], [R1, R2])]),
        (
            SQL.upsert_recipients,
            [
                (
                    [CAMPAIGN_ID, CAMPAIGN_ID],
                    [R2, R3],
                    ["b@example.org", "@example.org"],
                    ["b", "c"],
                    ['{"j":2}', '{"k":3}'],
                    [later, AT],
                    [later, later],
                )
            ],
        ),
        (SQL.delete_campaign_recipients, [(CAMPAIGN_ID,)]),
        (
            SQL.upsert_recipients,
            [([CAMPAIGN_ID], [R1], ["a@example.org"], ["a"], ["{}"], [later], [later])],
        ),
    ]


def test_outcome_rank_orders_sent_failed_suppressed_unknown() -> None:
    assert sorted(OUTCOME_RANK, key=OUTCOME_RANK.__getitem__, reverse=True) == [
        "sent",
        "failed",
        "suppressed",
        "unknown",
    ]
    assert len(set(OUTCOME_RANK.values())) == len(OUTCOME_RANK)


def test_each_outcome_event_writes_its_rank() -> None:
    ranks = {}
    for event_type in ("message.sent", "message.failed", "message.unknown", "message.suppressed"):
        (write,) = _writes(CASES[event_type][0])
        assert write.sql == SQL.record_outcome
        ranks[write.args[3]] = write.args[4]
    assert ranks == OUTCOME_RANK
    assert ranks["sent"] > ranks["failed"] > ranks["suppressed"] > ranks["unknown"]


def test_record_outcome_replaces_only_a_lower_rank() -> None:
    sql = " ".join(SQL.record_outcome.split())
    assert "ON CONFLICT (campaign_id, recipient_id) DO UPDATE" in sql
    assert sql.endswith("WHERE messages.rank < excluded.rank")


def test_a_late_unknown_never_outranks_a_sent() -> None:
    (sent,) = _writes(CASES["message.sent"][0])
    (unknown,) = _writes(CASES["message.unknown"][0])
    # Applying "unknown" over "sent" must not pass the ON CONFLICT guard (old < new).
    assert not sent.args[4] < unknown.args[4]
    assert unknown.args[4] < sent.args[4]


@pytest.mark.parametrize(
    "event",
    [
        ev.AddressSuppressed(email="Zoë@Example.org", mailbox_id=None, reason="unsubscribed"),
        ev.AddressUnsuppressed(email="Zoë@Example.org", mailbox_id=None),
    ],
    ids=["suppressed", "unsuppressed"],
)
def test_suppression_of_every_mailbox_uses_the_nil_uuid(event: ev.Event) -> None:
    (write,) = _writes(event)
    assert write.args[0] == address_key("Zoë@Example.org") == "zoë@example.org"
    assert write.args[1] == NIL_MAILBOX == uuid.UUID(int=0)


def test_suppression_keeps_the_address_as_given_besides_its_key() -> None:
    (write,) = _writes(
        ev.AddressSuppressed(email="STRASSE@Example.org", mailbox_id=None, reason="manual")
    )
    assert write.args == (
        address_key("STRASSE@Example.org"),
        NIL_MAILBOX,
        "STRASSE@Example.org",
        "manual",
        "",
        AT,
    )


def test_suppress_and_unsuppress_use_the_same_key() -> None:
    for mailbox in (MAILBOX_ID, None):
        (add,) = _writes(ev.AddressSuppressed(email="A@B.org", mailbox_id=mailbox, reason="manual"))
        (remove,) = _writes(ev.AddressUnsuppressed(email="a@b.ORG", mailbox_id=mailbox))
        assert add.args[:2] == remove.args[:2]


def test_sending_started_without_links_only_starts() -> None:
    event = ev.CampaignSendingStarted(
        campaign_id=CAMPAIGN_ID, run_id=RUN_ID, recipients=0, chunks=0, options=OPTIONS, links=[]
    )
    assert [w.sql for w in _writes(event)] == [SQL.start_campaign]


def test_status_changes_keep_a_finished_campaign_finished() -> None:
    sql = " ".join(SQL.set_campaign_status.split())
    assert "WHERE id = $1 AND status NOT IN ('done', 'cancelled', 'failed')" in sql


def test_merge_recipient_rows_folds_repeats_like_the_upsert() -> None:
    from pigeon_projector.projection import merge_recipient_rows

    later = AT + timedelta(seconds=5)
    rows = [
        (CAMPAIGN_ID, R1, "a@example.org", "Ann", {"x": 1, "y": 1}, AT),
        (CAMPAIGN_ID, R2, "b@example.org", "Bob", {}, AT),
        (CAMPAIGN_ID, R1, "A@example.org", "", {"y": 2}, later),
    ]
    # created_at from the first row of a pair, updated_at from the last.
    assert merge_recipient_rows(rows) == [
        (CAMPAIGN_ID, R1, "A@example.org", "Ann", {"x": 1, "y": 2}, AT, later),
        (CAMPAIGN_ID, R2, "b@example.org", "Bob", {}, AT, AT),
    ]
    assert merge_recipient_rows(rows[:2]) == [(*row, AT) for row in rows[:2]]
