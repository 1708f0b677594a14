"""Owners for data from before owners existed: the first administrator adopts it.

Run when the API connects. Each adoption is an event (`*.owner_changed`) with a
deterministic message id, so API replicas starting together store it once and a rebuild
from the stream gives the same owners.
"""

from __future__ import annotations

import logging
from typing import Any

from nats.js import JetStreamContext

from pigeon_api.context import SQL
from pigeon_common import events as ev
from pigeon_common.jetstream import publish_event

log = logging.getLogger(__name__)


async def adopt_orphans(conn: Any, js: JetStreamContext) -> int:
    """Give every mailbox and campaign without an owner to the first administrator;
    returns how many were adopted."""
    admin = await conn.fetchval(SQL.first_admin)
    if admin is None:
        return 0
    adopted: list[tuple[str, ev.Event]] = [
        (str(row["id"]), ev.MailboxOwnerChanged(mailbox_id=row["id"], owner_id=admin))
        for row in await conn.fetch(SQL.orphan_mailboxes)
    ]
    adopted += [
        (str(row["id"]), ev.CampaignOwnerChanged(campaign_id=row["id"], owner_id=admin))
        for row in await conn.fetch(SQL.orphan_campaigns)
    ]
    for aggregate_id, event in adopted:
        envelope = ev.envelope_for(event, aggregate_id)
        await publish_event(js, envelope, msg_id=f"adopt:{aggregate_id}")
    if adopted:
        log.info("the first administrator adopted %d mailboxes and campaigns", len(adopted))
    return len(adopted)
