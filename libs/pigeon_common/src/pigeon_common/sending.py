"""Starting and resuming a campaign's send: one event, then the chunk jobs.

Shared by the API (send now, resume) and the scheduler (send_at reached). Starting is
idempotent: the run id and the event's message id derive from the campaign, so a
repeated start inside the duplicate window stores nothing new and re-publishes the same
jobs, which JetStream drops as duplicates; the sender's claims cover anything later.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from nats.js import JetStreamContext

from pigeon_common import events as ev
from pigeon_common.domain.campaign import CampaignState, StartSending, decide
from pigeon_common.jetstream import publish_event
from pigeon_common.jobs import PackedIds, SendChunk, publish_chunks
from pigeon_common.render import CampaignSpec
from pigeon_common.shared_sql import SQL

WaitProjected = Callable[[int], Awaitable[bool]]
RUN_NAMESPACE = uuid.UUID("0b7f5a52-6a0e-4f0e-a7c1-3b1d1c9e2f44")
ID_PAGE = 10_000  # recipient ids read per round trip when a run is enqueued


@dataclass(frozen=True)
class Enqueued:
    """What a start or resume put on the queue; `seq` is the event's stream sequence."""

    run_id: uuid.UUID
    recipients: int
    chunks: int
    seq: int


def first_run_id(campaign_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(RUN_NAMESPACE, f"{campaign_id}:start")


def _jobs(
    campaign_id: uuid.UUID, run_id: uuid.UUID, ids: PackedIds, size: int
) -> Iterator[SendChunk]:
    for i, group in enumerate(ids.chunks(size)):
        yield SendChunk(campaign_id=campaign_id, run_id=run_id, chunk_index=i, recipient_ids=group)


async def packed_ids(conn: asyncpg.Connection, sql: str, campaign_id: uuid.UUID) -> PackedIds:
    """The ids a query gives, read through a cursor ID_PAGE rows at a time."""
    out = bytearray()
    async with conn.transaction():  # a cursor lives in a transaction
        cursor = await conn.cursor(sql, campaign_id)
        while rows := await cursor.fetch(ID_PAGE):
            out += b"".join([row[0].bytes for row in rows])
    return PackedIds(bytes(out))


async def start_sending(
    conn: asyncpg.Connection,
    js: JetStreamContext,
    state: CampaignState,
    options: ev.SendOptions,
    links: list[str],
    actor: str | None = None,
    wait_projected: WaitProjected | None = None,
) -> Enqueued:
    """Start the campaign in `state` (the domain refuses one that cannot start)."""
    campaign_id = state.campaign_id
    ids = await packed_ids(conn, SQL.campaign_recipient_ids, campaign_id)
    run_id = first_run_id(campaign_id)
    chunks = ids.chunk_count(options.batch_size)
    [event] = decide(state, StartSending(run_id, len(ids), chunks, options, links))
    envelope = ev.envelope_for(
        event, str(campaign_id), event_id=uuid.uuid5(RUN_NAMESPACE, f"{run_id}:event"), actor=actor
    )
    seq = await publish_event(js, envelope, msg_id=f"start:{campaign_id}")
    if wait_projected is not None:
        await wait_projected(seq)  # senders then find the campaign sending
    await publish_chunks(js, _jobs(campaign_id, run_id, ids, options.batch_size))
    if not ids:
        seq = await complete_campaign(js, campaign_id)
    return Enqueued(run_id, len(ids), chunks, seq)


async def resume_sending(
    conn: asyncpg.Connection,
    js: JetStreamContext,
    campaign_id: uuid.UUID,
    batch_size: int,
    actor: str | None = None,
    wait_projected: WaitProjected | None = None,
) -> Enqueued:
    """Enqueue, under a new run, every recipient that has no outcome yet."""
    ids = await packed_ids(conn, SQL.recipient_ids_without_outcome, campaign_id)
    run_id = uuid.uuid4()
    chunks = ids.chunk_count(batch_size)
    event = ev.CampaignResumed(campaign_id=campaign_id, run_id=run_id, chunks=chunks)
    seq = await publish_event(js, ev.envelope_for(event, str(campaign_id), actor=actor))
    if wait_projected is not None:
        await wait_projected(seq)
    await publish_chunks(js, _jobs(campaign_id, run_id, ids, batch_size))
    return Enqueued(run_id, len(ids), chunks, seq)


async def complete_campaign(
    js: JetStreamContext,
    campaign_id: uuid.UUID,
    sent: int = 0,
    failed: int = 0,
    unknown: int = 0,
    suppressed: int = 0,
) -> int:
    """Store the campaign's one `campaign.completed` (message id `done:<campaign>`)."""
    event = ev.CampaignCompleted(
        campaign_id=campaign_id, sent=sent, failed=failed, unknown=unknown, suppressed=suppressed
    )
    return await publish_event(
        js, ev.envelope_for(event, str(campaign_id)), msg_id=f"done:{campaign_id}"
    )


async def fail_campaign(js: JetStreamContext, campaign_id: uuid.UUID, reason: str) -> int:
    """Store the campaign's `campaign.failed` (message id `fail:<campaign>`)."""
    event = ev.CampaignFailed(campaign_id=campaign_id, reason=reason)
    return await publish_event(
        js, ev.envelope_for(event, str(campaign_id)), msg_id=f"fail:{campaign_id}"
    )


class NotSendableError(Exception):
    """The campaign cannot be sent as it stands (no mailbox, passwords that cannot be
    decrypted, a bad sender address); the message says why and names no secret."""


async def load_spec(
    conn: asyncpg.Connection, campaign_id: uuid.UUID, public_base_url: str | None
) -> CampaignSpec:
    """The campaign and its sender identity, as the renderer takes them."""
    row = await conn.fetchrow(SQL.campaign_spec, campaign_id)
    if row is None:
        raise NotSendableError("no such campaign")
    if row["from_address"] is None:
        raise NotSendableError("the campaign has no mailbox: set mailbox_id first")
    return spec_of(row, public_base_url)


def spec_of(row: Any, public_base_url: str | None) -> CampaignSpec:
    """The renderer's spec from a row with the campaign's id, name, subject and template
    and its mailbox's from_name and from_address (Message-IDs use the sender's domain)."""
    return CampaignSpec(
        campaign_id=row["id"],
        name=row["name"],
        subject=row["subject"],
        template_markdown=row["template_markdown"],
        from_name=row["from_name"],
        from_address=row["from_address"],
        public_base_url=public_base_url,
        message_id_domain=str(row["from_address"]).rpartition("@")[2],
    )
