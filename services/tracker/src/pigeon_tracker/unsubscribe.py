"""Unsubscribe and re-subscribe: read the recipient, store the person's action.

A POST stores its event under a message id per recipient, action and minute
(coalesce.action_id), so a repeated POST (a mail client retrying one-click, or a loop)
stores nothing new; applying the same action twice would change nothing anyway.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import asyncpg

from pigeon_common import events as ev
from pigeon_common.jetstream import encode, subject_for
from pigeon_common.queries import Queries
from pigeon_common.read_models import read_checkpoint
from pigeon_common.validation import address_key
from pigeon_tracker.coalesce import action_id, chained_id
from pigeon_tracker.forms import Method, UnsubscribeRequest
from pigeon_tracker.pages import PageFacts, PageKind
from pigeon_tracker.publisher import EventPublisher
from pigeon_tracker.subscription import (
    Subscription,
    SuppressionRow,
    page_after,
    page_for,
    subscription_of,
)

SQL = Queries.from_package("pigeon_tracker", "queries.sql")
# Flips (unsubscribe, re-subscribe, unsubscribe...) within one window that one POST
# follows at most; each is a deterministic id, so a flood still stores a bounded number.
MAX_CHAINED = 4


@dataclass(frozen=True)
class Answer:
    """The page to show after a GET or POST."""

    kind: PageKind
    facts: PageFacts


class Unsubscriber:
    def __init__(self, pool: asyncpg.Pool, publisher: EventPublisher) -> None:
        self._pool = pool
        self._publisher = publisher

    async def _read(self, campaign_id: uuid.UUID, recipient_id: uuid.UUID) -> Subscription | None:
        async with self._pool.acquire() as conn:
            return await self._read_on(conn, campaign_id, recipient_id)

    async def _read_after(
        self, seq: int, campaign_id: uuid.UUID, recipient_id: uuid.UUID
    ) -> Subscription | None:
        """The subscription once the read models contain event `seq`; None when they do
        not yet (or there is no such recipient)."""
        async with self._pool.acquire() as conn:
            if await read_checkpoint(conn) < seq:
                return None
            return await self._read_on(conn, campaign_id, recipient_id)

    async def _read_on(
        self, conn: asyncpg.Connection, campaign_id: uuid.UUID, recipient_id: uuid.UUID
    ) -> Subscription | None:
        row = await conn.fetchrow(SQL.unsubscribe_subject, campaign_id, recipient_id)
        if row is None:
            return None
        rows = await conn.fetch(
            SQL.suppressions_of,
            address_key(row["email"]),
            row["mailbox_id"] or uuid.UUID(int=0),
        )
        return subscription_of(
            campaign_id,
            recipient_id,
            row["email"],
            row["mailbox_id"],
            row["sender"],
            [SuppressionRow(r["mailbox_key"], r["reason"], r["created_at"]) for r in rows],
        )

    async def show(self, campaign_id: uuid.UUID, recipient_id: uuid.UUID) -> Answer | None:
        """The page for a GET or HEAD (None: no such recipient). Changes nothing."""
        sub = await self._read(campaign_id, recipient_id)
        if sub is None:
            return None
        return Answer(page_for(sub), PageFacts(sub.email, sub.sender))

    async def act(
        self, campaign_id: uuid.UUID, recipient_id: uuid.UUID, request: UnsubscribeRequest
    ) -> Answer | None:
        """Unsubscribe or re-subscribe; raises NotStoredError when the event was not stored.

        The action is published even when the read model says it is done already (it may
        lag behind a re-subscribe stored a moment ago); JetStream drops it when the same
        action was stored this minute. If that earlier one has been undone since (the
        read models contain it, and show the opposite state), it is stored under a
        chained id. While they do not contain it yet, this POST is a repeat of it."""
        sub = await self._read(campaign_id, recipient_id)
        if sub is None:
            return None
        if request.action == "unsubscribe":
            envelope = _unsubscribed(sub, request.method)
        else:
            envelope = _resubscribed(sub)
        subject, payload = subject_for(envelope), encode(envelope)
        msg_id = action_id(request.action, campaign_id, recipient_id, time.time())
        for _ in range(MAX_CHAINED):
            stored = await self._publisher.store(subject, payload, msg_id)
            if not stored.duplicate:
                break
            now = await self._read_after(stored.seq, campaign_id, recipient_id)
            if now is None or now.unsubscribed == (request.action == "unsubscribe"):
                break  # the earlier event stands (or is still to apply): a repeat
            msg_id = chained_id(msg_id, stored.seq)
        kind = page_after(sub, request.action)
        return Answer(kind, PageFacts(sub.email, sub.sender, just_now=True))


def _unsubscribed(sub: Subscription, method: Method) -> ev.Envelope:
    event = ev.RecipientUnsubscribed(
        campaign_id=sub.campaign_id,
        recipient_id=sub.recipient_id,
        email=sub.email,
        mailbox_id=sub.mailbox_id,
        method=method,
    )
    return ev.envelope_for(event, str(sub.campaign_id))


def _resubscribed(sub: Subscription) -> ev.Envelope:
    event = ev.RecipientResubscribed(
        campaign_id=sub.campaign_id,
        recipient_id=sub.recipient_id,
        email=sub.email,
        mailbox_id=sub.mailbox_id,
    )
    return ev.envelope_for(event, str(sub.campaign_id))
