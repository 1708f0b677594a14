"""Per-message states and per-campaign counters (migration 0008) equal what the read
models give when counted from scratch, whatever the batch sizes, and after deletions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pigeon_common import db
from pigeon_common import events as ev
from pigeon_projector.projection import READ_MODEL_TABLES
from pigeon_projector.projector import StoredEvent, apply_batch
from pigeon_testing.stack import migrate

START = datetime(2026, 3, 1, tzinfo=UTC)


def _history(campaign: uuid.UUID) -> list[tuple[ev.Event, datetime]]:
    people = [
        ev.RecipientData(recipient_id=uuid.uuid5(campaign, f"p{i}"), email=f"p{i}@example.org")
        for i in range(8)
    ]
    p = [r.recipient_id for r in people]

    def base(i: int) -> dict[str, object]:
        return {"campaign_id": campaign, "recipient_id": p[i], "email": people[i].email}

    def at(seconds: float) -> datetime:
        return START + timedelta(seconds=seconds)

    bounce = {
        "mailbox_id": None,
        "action": "failed",
        "diagnostic": "550 no",
        "source": "s",
        "reason": "user_unknown",
        "evidence": "test",
    }
    return [
        (
            ev.CampaignCreated(
                campaign_id=campaign, name="c", subject="s", template_markdown="t", mailbox_id=None
            ),
            at(0),
        ),
        (ev.RecipientsAdded(campaign_id=campaign, recipients=people), at(1)),
        # p0: a prefetch stored before its `sent` (machine once the sent time is known),
        # then a person's open and two clicks.
        (ev.MessageOpened(campaign_id=campaign, recipient_id=p[0], machine=False), at(100)),
        (ev.MessageSent(**base(0), message_id="m0@x", smtp_reply="250 ok", appended=True), at(99)),
        (ev.MessageOpened(campaign_id=campaign, recipient_id=p[0], machine=False), at(500)),
        (
            ev.LinkClicked(
                campaign_id=campaign,
                recipient_id=p[0],
                link_index=0,
                url="https://example.org/",
                machine=False,
            ),
            at(510),
        ),
        (
            ev.LinkClicked(
                campaign_id=campaign,
                recipient_id=p[0],
                link_index=0,
                url="https://example.org/",
                machine=True,
                machine_reason="scanner",
            ),
            at(511),
        ),
        (ev.MessageSent(**base(1), message_id="m1@x", smtp_reply="250 ok", appended=True), at(100)),
        (ev.MessageBounced(**base(1), hard=True, status="5.1.1", suppress=True, **bounce), at(200)),
        (ev.MessageSent(**base(2), message_id="m2@x", smtp_reply="250 ok", appended=True), at(100)),
        (
            ev.MessageBounced(**base(2), hard=False, status="4.2.2", suppress=False, **bounce),
            at(200),
        ),
        (ev.MessageDeferred(**base(2), status="4.4.1", diagnostic="later", source="d"), at(150)),
        (ev.MessageSent(**base(3), message_id="m3@x", smtp_reply="250 ok", appended=True), at(100)),
        (
            ev.MessageReplied(
                campaign_id=campaign,
                recipient_id=p[3],
                from_address="p3@example.org",
                subject="Re: s",
                reply_message_id="r@x",
                source="r",
            ),
            at(300),
        ),
        (
            ev.MessageFailed(**base(4), smtp_code=550, smtp_reply="550 no", hard_bounce=True),
            at(100),
        ),
        (ev.MessageUnknown(**base(5), reason="timeout"), at(100)),
        # p5's copy is filed later: `appended` follows (the state row is refreshed).
        (
            ev.SentCopiesFiled(
                campaign_id=campaign, mailbox_id=uuid.uuid4(), folder="Sent", recipient_ids=[p[5]]
            ),
            at(110),
        ),
        (ev.MessageSent(**base(6), message_id="m6@x", smtp_reply="250 ok", appended=True), at(100)),
        (ev.RecipientUnsubscribed(**base(6), mailbox_id=None, method="page"), at(400)),
        (
            ev.MessageOpened(
                campaign_id=campaign, recipient_id=p[6], machine=True, machine_reason="proxy"
            ),
            at(401),
        ),
        # p7 is deleted after an open: it counts nowhere.
        (ev.MessageSent(**base(7), message_id="m7@x", smtp_reply="250 ok", appended=True), at(100)),
        (ev.MessageOpened(campaign_id=campaign, recipient_id=p[7], machine=False), at(600)),
        (ev.RecipientDeleted(campaign_id=campaign, recipient_id=p[7]), at(700)),
        # Recipients added once the campaign has activity (their states are recomputed):
        # p0 again, now with a name, and a new p8.
        (
            ev.RecipientsAdded(
                campaign_id=campaign,
                recipients=[
                    people[0].model_copy(update={"name": "Pat"}),
                    ev.RecipientData(recipient_id=uuid.uuid5(campaign, "p8"), email="p8@x.org"),
                ],
            ),
            at(800),
        ),
    ]


def _quiet_history(campaign: uuid.UUID) -> list[tuple[ev.Event, datetime]]:
    """A campaign with no activity: its import's states are written with the recipients
    (projection.sql's upsert-recipients), also when an address comes again or is deleted
    and added back."""
    q = [
        ev.RecipientData(recipient_id=uuid.uuid5(campaign, f"q{i}"), email=f"q{i}@example.org")
        for i in range(6)
    ]
    at = START + timedelta(seconds=5)
    return [
        (
            ev.CampaignCreated(
                campaign_id=campaign, name="q", subject="s", template_markdown="t", mailbox_id=None
            ),
            at,
        ),
        (ev.RecipientsAdded(campaign_id=campaign, recipients=q[:5]), at),
        (
            ev.RecipientsAdded(
                campaign_id=campaign, recipients=[q[1].model_copy(update={"name": "Q"}), q[5]]
            ),
            at,
        ),
        (ev.RecipientDeleted(campaign_id=campaign, recipient_id=q[2].recipient_id), at),
        (
            ev.RecipientsAdded(
                campaign_id=campaign, recipients=[q[2].model_copy(update={"name": "Back"})]
            ),
            at,
        ),
        (ev.RecipientDeleted(campaign_id=campaign, recipient_id=q[3].recipient_id), at),
    ]


# Each counter counted from the read models, the slow way the state rows replace.
FROM_SCRATCH = """
SELECT count(*) AS recipients,
  count(*) FILTER (WHERE status = 'queued') AS queued,
  count(*) FILTER (WHERE status = 'sent') AS sent,
  count(*) FILTER (WHERE status = 'failed') AS failed,
  count(*) FILTER (WHERE status = 'unknown') AS unknown,
  count(*) FILTER (WHERE status = 'suppressed') AS suppressed,
  sum(opens) AS opens, sum(human_opens) AS human_opens,
  count(*) FILTER (WHERE opens > 0) AS opened,
  count(*) FILTER (WHERE human_opens > 0) AS opened_human,
  count(*) FILTER (WHERE opens > human_opens) AS opened_machine,
  sum(clicks) AS clicks, sum(human_clicks) AS human_clicks,
  count(*) FILTER (WHERE clicks > 0) AS clicked,
  count(*) FILTER (WHERE human_clicks > 0) AS clicked_human,
  count(*) FILTER (WHERE bounce IS NOT NULL) AS bounced,
  count(*) FILTER (WHERE bounce = 'hard') AS bounced_hard,
  count(*) FILTER (WHERE bounce = 'soft') AS bounced_soft,
  count(*) FILTER (WHERE deferred) AS deferred,
  count(*) FILTER (WHERE replied) AS replied,
  count(*) FILTER (WHERE auto_replied) AS auto_replied,
  count(*) FILTER (WHERE unsubscribed) AS unsubscribed
FROM message_results WHERE campaign_id = $1
"""


async def test_states_and_counters_match_the_read_models_for_any_batching(
    fresh_database: str,
) -> None:
    await migrate(fresh_database)
    campaign, quiet = uuid.uuid4(), uuid.uuid4()
    history = [(campaign, e, t) for e, t in _history(campaign)]
    history += [(quiet, e, t) for e, t in _quiet_history(quiet)]
    stored = [
        StoredEvent(seq, ev.envelope_for(e, str(c), occurred_at=t).model_dump_json().encode())
        for seq, (c, e, t) in enumerate(history, start=1)
    ]
    conn = await db.connect(fresh_database)
    try:
        snapshots = []
        for size in (len(stored), 1, 3):
            await conn.execute(f"TRUNCATE {', '.join(READ_MODEL_TABLES)}")
            await conn.execute("DELETE FROM projection_checkpoints")
            for start in range(0, len(stored), size):
                await apply_batch(conn, stored[start : start + size])
            all_counters = {}
            for c in (campaign, quiet):
                counters = {
                    r["counter"]: r["n"]
                    for r in await conn.fetch(
                        "SELECT counter, n FROM campaign_counters WHERE campaign_id = $1", c
                    )
                }
                expected = dict(await conn.fetchrow(FROM_SCRATCH, c))
                assert counters == {k: v for k, v in expected.items() if v}, size
                all_counters[c] = counters
                columns = (
                    "recipient_id, email, name, status, appended, opens, human_opens, clicks,"
                    " human_clicks, bounce, deferred, replied, auto_replied, unsubscribed, states"
                )
                views = await conn.fetch(
                    f"SELECT {columns} FROM message_results WHERE campaign_id = $1"
                    " ORDER BY recipient_id",
                    c,
                )
                states = await conn.fetch(
                    f"SELECT {columns} FROM message_states WHERE campaign_id = $1"
                    " ORDER BY recipient_id",
                    c,
                )
                assert [tuple(r) for r in states] == [tuple(r) for r in views], size
            snapshots.append(
                [tuple(r) for r in await conn.fetch("SELECT * FROM message_states ORDER BY 1, 2")]
            )
        assert snapshots[0] == snapshots[1] == snapshots[2]
        assert all_counters[quiet] == {"recipients": 5, "queued": 5}
        names = await conn.fetch(
            "SELECT email, name FROM message_states WHERE campaign_id = $1 ORDER BY email", quiet
        )
        assert [tuple(r) for r in names] == [
            ("q0@example.org", ""),
            ("q1@example.org", "Q"),
            ("q2@example.org", "Back"),
            ("q4@example.org", ""),
            ("q5@example.org", ""),
        ]
        assert (
            await conn.fetchval(
                "SELECT name FROM message_states WHERE campaign_id = $1 AND email = $2",
                campaign,
                "p0@example.org",
            )
            == "Pat"
        )
        assert all_counters[campaign] == {
            "recipients": 8,
            "queued": 1,
            "sent": 5,
            "failed": 1,
            "unknown": 1,
            "opens": 3,
            "human_opens": 1,
            "opened": 2,
            "opened_human": 1,
            "opened_machine": 2,
            "clicks": 2,
            "human_clicks": 1,
            "clicked": 1,
            "clicked_human": 1,
            "bounced": 2,
            "bounced_hard": 1,
            "bounced_soft": 1,
            "deferred": 1,
            "replied": 1,
            "unsubscribed": 1,
        }

        deleted = ev.CampaignDeleted(campaign_id=campaign)
        await apply_batch(
            conn,
            [
                StoredEvent(
                    len(stored) + 1,
                    ev.envelope_for(deleted, str(campaign)).model_dump_json().encode(),
                )
            ],
        )
        left = "SELECT count(*) FROM {} WHERE campaign_id = $1"
        assert await conn.fetchval(left.format("campaign_counters"), campaign) == 0
        assert await conn.fetchval(left.format("message_states"), campaign) == 0
    finally:
        await conn.close()
