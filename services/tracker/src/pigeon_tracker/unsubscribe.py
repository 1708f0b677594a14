"""Unsubscribe and re-subscribe: read the recipient's state, publish what changes it.

A repeated POST changes nothing twice: once the projector has applied an unsubscribe the
read model says so and nothing is published; before that, the repeat carries the same
JetStream message id and is dropped as a duplicate. A duplicate ack can also mean the
earlier unsubscribe was undone by a re-subscribe since (same id, inside the duplicate
window): then, once the read models have reached the earlier event, the state is read
again and, if still subscribed, the unsubscribe is stored under an id of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg

from pigeon_common import events as ev
from pigeon_common.jetstream import encode, subject_for
from pigeon_common.projector import read_checkpoint
from pigeon_common.queries import Queries
from pigeon_common.validation import address_key
from pigeon_tracker.forms import Method, UnsubscribeRequest
from pigeon_tracker.pages import PageFacts, PageKind
from pigeon_tracker.publisher import EventPublisher, Stored
from pigeon_tracker.subscription import (
    Subscription,
    SuppressionRow,
    change_for,
    page_after,
    page_for,
    resubscribe_msg_id,
    subscription_of,
    unsubscribe_msg_id,
)

SQL = Queries.from_package("pigeon_tracker", "queries.sql")
PROJECTION_WAIT_SEC = 3.0
PROJECTION_POLL_SEC = 0.05


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
            row["unsubscribed_at"],
            row["resubscribed_at"],
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
        """Unsubscribe or re-subscribe; raises NotStoredError when the event was not stored."""
        sub = await self._read(campaign_id, recipient_id)
        if sub is None:
            return None
        change = change_for(sub, request.action)
        if change == "unsubscribe":
            sub = await self._unsubscribe(sub, request.method)
        elif change == "resubscribe":
            await self._store(_resubscribed(sub), resubscribe_msg_id(sub))
        kind = page_after(sub, request.action)
        return Answer(kind, PageFacts(sub.email, sub.sender, just_now=change is not None))

    async def _unsubscribe(self, sub: Subscription, method: Method) -> Subscription:
        msg_id = unsubscribe_msg_id(sub.campaign_id, sub.recipient_id)
        event = _unsubscribed(sub, method)
        stored = await self._store(event, msg_id)
        if not stored.duplicate:
            return sub
        # Same id seen before: wait until the read models contain that first copy, then
        # look again; only if it has been undone since does this one need storing.
        await self._wait_projected(stored.seq)
        again = await self._read(sub.campaign_id, sub.recipient_id)
        if again is None or change_for(again, "unsubscribe") is None:
            return again or sub
        await self._store(event, f"{msg_id}:{event.event_id}")
        return again

    async def _store(self, envelope: ev.Envelope, msg_id: str) -> Stored:
        return await self._publisher.store(subject_for(envelope), encode(envelope), msg_id)

    async def _wait_projected(self, seq: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROJECTION_WAIT_SEC
        while loop.time() < deadline:
            async with self._pool.acquire() as conn:
                if await read_checkpoint(conn) >= seq:
                    return
            await asyncio.sleep(PROJECTION_POLL_SEC)


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
