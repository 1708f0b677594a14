"""Campaign commands: create, read, edit, delete, clone and share."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from pigeon_api.commands.loading import campaign_for, campaign_row, resource_of
from pigeon_api.commands.storing import Stored, new_id, store
from pigeon_api.context import SQL, ApiContext
from pigeon_common.domain import campaign as rules
from pigeon_common.domain.access import Action, Actor, Kind, authorize, list_scope
from pigeon_common.domain.errors import Invalid, NotFound
from pigeon_common.domain.status import CampaignStatus


@dataclass(frozen=True, slots=True)
class CampaignDraft:
    name: str
    subject: str
    template_markdown: str
    mailbox_id: uuid.UUID | None


async def check_mailbox_usable(conn: Any, actor: Actor, mailbox_id: uuid.UUID | None) -> None:
    """A campaign may send only from a mailbox its author owns or was given to use."""
    if mailbox_id is None:
        return
    row = await conn.fetchrow(SQL.mailbox_by_id, mailbox_id)
    try:
        if row is None:
            raise NotFound("mailbox")
        authorize(actor, Action.MAILBOX_USE, resource_of(Kind.MAILBOX, row))
    except NotFound:
        raise Invalid("validation_error", "mailbox_id: no such mailbox", "mailbox_id") from None


async def create_campaign(
    ctx: ApiContext,
    conn: Any,
    actor: Actor,
    draft: CampaignDraft,
    idempotency_key: str | None = None,
) -> Stored:
    authorize(actor, Action.CAMPAIGN_CREATE)
    campaign_id = new_id(actor, "campaign", idempotency_key)
    if idempotency_key is not None and await _exists(conn, actor, campaign_id):
        return Stored(campaign_id, projected=True, created=False)
    await check_mailbox_usable(conn, actor, draft.mailbox_id)
    command = rules.CreateCampaign(
        campaign_id=campaign_id,
        owner_id=actor.user_id,
        name=draft.name,
        subject=draft.subject,
        template_markdown=draft.template_markdown,
        mailbox_id=draft.mailbox_id,
    )
    events = rules.decide(None, command)
    event_id = uuid.uuid5(campaign_id, "created") if idempotency_key else None
    return Stored(campaign_id, await store(ctx, actor, campaign_id, events, event_id=event_id))


async def _exists(conn: Any, actor: Actor, campaign_id: uuid.UUID) -> bool:
    try:
        await campaign_row(conn, actor, campaign_id, Action.CAMPAIGN_VIEW)
    except NotFound:
        return False
    return True


async def get_campaign(conn: Any, actor: Actor, campaign_id: uuid.UUID) -> Any:
    return await campaign_row(conn, actor, campaign_id, Action.CAMPAIGN_VIEW)


async def list_campaigns(
    conn: Any, actor: Actor, status: CampaignStatus | None, limit: int, offset: int
) -> tuple[list[Any], int]:
    scope = list_scope(actor, Kind.CAMPAIGN)
    wanted = status.value if status else None
    visible = (scope.everything, scope.user_id, scope.include_shared)
    rows = await conn.fetch(SQL.list_campaigns, limit, offset, wanted, *visible)
    count = await conn.fetchval(SQL.count_campaigns, wanted, *visible)
    return list(rows), int(count)


async def update_campaign(
    ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID, changes: dict[str, Any]
) -> Stored:
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_EDIT)
    if changes.get("mailbox_id") is not None and changes["mailbox_id"] != state.mailbox_id:
        await check_mailbox_usable(conn, actor, changes["mailbox_id"])
    events = rules.decide(state, rules.UpdateCampaign(changes))
    return Stored(campaign_id, await store(ctx, actor, campaign_id, events))


async def delete_campaign(ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID) -> None:
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_DELETE)
    await store(ctx, actor, campaign_id, rules.decide(state, rules.DeleteCampaign()))


async def clone_campaign(
    ctx: ApiContext,
    conn: Any,
    actor: Actor,
    campaign_id: uuid.UUID,
    name: str | None = None,
    idempotency_key: str | None = None,
) -> Stored:
    """A new draft owned by the actor, with the campaign's content and no recipients. The
    mailbox is kept only when the actor may use it."""
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_VIEW)
    authorize(actor, Action.CAMPAIGN_CREATE)
    clone_id = new_id(actor, f"clone:{campaign_id}", idempotency_key)
    if idempotency_key is not None and await _exists(conn, actor, clone_id):
        return Stored(clone_id, projected=True, created=False)
    try:
        await check_mailbox_usable(conn, actor, state.mailbox_id)
    except Invalid:
        state = dataclasses.replace(state, mailbox_id=None)
    events = rules.decide(state, rules.CloneCampaign(clone_id, actor.user_id, name))
    event_id = uuid.uuid5(clone_id, "created") if idempotency_key else None
    return Stored(clone_id, await store(ctx, actor, clone_id, events, event_id=event_id))


async def share_campaign(
    ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID, email: str
) -> None:
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_SHARE)
    user_id = await user_id_by_email(conn, email)
    await store(ctx, actor, campaign_id, rules.decide(state, rules.ShareCampaign(user_id)))


async def unshare_campaign(
    ctx: ApiContext, conn: Any, actor: Actor, campaign_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_SHARE)
    if user_id not in state.shared_with:
        raise NotFound("share")
    await store(ctx, actor, campaign_id, rules.decide(state, rules.UnshareCampaign(user_id)))


async def campaign_shares(conn: Any, actor: Actor, campaign_id: uuid.UUID) -> list[Any]:
    await campaign_row(conn, actor, campaign_id, Action.CAMPAIGN_VIEW)
    return list(await conn.fetch(SQL.campaign_shares, campaign_id))


async def user_id_by_email(conn: Any, email: str) -> uuid.UUID:
    row = await conn.fetchrow(SQL.user_by_email, email)
    if row is None:
        raise Invalid("validation_error", "email: no user with this email", "email")
    return uuid.UUID(str(row["id"]))
