"""Load a mailbox or campaign for an action: its row once the policy allows it.

A missing row and a row the actor may not know of look the same (NotFound), so the
answer never tells whether someone else's resource exists.
"""

from __future__ import annotations

import uuid
from typing import Any

from pigeon_api.context import SQL
from pigeon_common import events as ev
from pigeon_common.domain.access import Action, Actor, Kind, Resource, authorize
from pigeon_common.domain.campaign import CampaignState
from pigeon_common.domain.errors import NotFound
from pigeon_common.domain.mailbox import MailboxState
from pigeon_common.domain.status import CampaignStatus


def resource_of(kind: Kind, row: Any) -> Resource:
    return Resource(kind, row["owner_id"], frozenset(row["shared_with"] or ()))


async def campaign_row(conn: Any, actor: Actor, campaign_id: uuid.UUID, action: Action) -> Any:
    row = await conn.fetchrow(SQL.campaign_by_id, campaign_id)
    if row is None:
        raise NotFound("campaign")
    authorize(actor, action, resource_of(Kind.CAMPAIGN, row))
    return row


def campaign_state(row: Any) -> CampaignState:
    return CampaignState(
        campaign_id=row["id"],
        status=CampaignStatus(row["status"]),
        name=row["name"],
        subject=row["subject"],
        template_markdown=row["template_markdown"],
        mailbox_id=row["mailbox_id"],
        owner_id=row["owner_id"],
        shared_with=frozenset(row["shared_with"] or ()),
    )


async def campaign_for(
    conn: Any, actor: Actor, campaign_id: uuid.UUID, action: Action
) -> CampaignState:
    return campaign_state(await campaign_row(conn, actor, campaign_id, action))


async def mailbox_row(conn: Any, actor: Actor, mailbox_id: uuid.UUID, action: Action) -> Any:
    row = await conn.fetchrow(SQL.mailbox_by_id, mailbox_id)
    if row is None:
        raise NotFound("mailbox")
    authorize(actor, action, resource_of(Kind.MAILBOX, row))
    return row


def mailbox_config(row: Any) -> ev.MailboxConfig:
    """The mailbox's configuration as its events carry it, from its read-model row."""

    def server(prefix: str) -> ev.ServerEndpoint:
        return ev.ServerEndpoint(
            **{name: row[f"{prefix}_{name}"] for name in ev.ServerEndpoint.model_fields}
        )

    names = set(ev.MailboxConfig.model_fields) - {"smtp", "imap"}
    return ev.MailboxConfig(
        **{name: row[name] for name in names}, smtp=server("smtp"), imap=server("imap")
    )


def mailbox_state(row: Any) -> MailboxState:
    return MailboxState(
        mailbox_id=row["id"],
        owner_id=row["owner_id"],
        config=mailbox_config(row),
        shared_with=frozenset(row["shared_with"] or ()),
    )
