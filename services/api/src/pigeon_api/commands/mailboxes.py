"""Mailbox commands: connect, read, edit, delete and share a mailbox. Passwords go in,
never out, and never follow a changed server (see pigeon_common.domain.mailbox)."""

from __future__ import annotations

import uuid
from typing import Any

from pigeon_api.commands.campaigns import user_id_by_email
from pigeon_api.commands.connect_errors import check_mailbox_hosts
from pigeon_api.commands.loading import mailbox_row, mailbox_state
from pigeon_api.commands.storing import Stored, new_id, store
from pigeon_api.context import SQL, ApiContext
from pigeon_common import events as ev
from pigeon_common.domain import mailbox as rules
from pigeon_common.domain.access import (
    Action,
    Actor,
    Kind,
    authorize,
    list_scope,
    usable_mailboxes_scope,
)
from pigeon_common.domain.errors import NotFound


def _sealed(ctx: ApiContext, password: str | None) -> str | None:
    return ctx.box.encrypt(password) if password else None


async def create_mailbox(
    ctx: ApiContext,
    conn: Any,
    actor: Actor,
    config: ev.MailboxConfig,
    smtp_password: str,
    imap_password: str,
    idempotency_key: str | None = None,
) -> Stored:
    authorize(actor, Action.MAILBOX_CREATE)
    check_mailbox_hosts(ctx.settings.mailbox_host_policy(), config)
    mailbox_id = new_id(actor, "mailbox", idempotency_key)
    if idempotency_key is not None and await _visible(conn, actor, mailbox_id):
        return Stored(mailbox_id, projected=True, created=False)
    await conn.execute(
        SQL.upsert_mailbox_secrets,
        mailbox_id,
        _sealed(ctx, smtp_password),
        _sealed(ctx, imap_password),
    )
    event = ev.MailboxCreated(mailbox_id=mailbox_id, config=config, owner_id=actor.user_id)
    event_id = uuid.uuid5(mailbox_id, "created") if idempotency_key else None
    return Stored(mailbox_id, await store(ctx, actor, mailbox_id, [event], event_id=event_id))


async def _visible(conn: Any, actor: Actor, mailbox_id: uuid.UUID) -> bool:
    try:
        await mailbox_row(conn, actor, mailbox_id, Action.MAILBOX_VIEW)
    except NotFound:
        return False
    return True


async def get_mailbox(conn: Any, actor: Actor, mailbox_id: uuid.UUID) -> Any:
    return await mailbox_row(conn, actor, mailbox_id, Action.MAILBOX_VIEW)


async def list_mailboxes(
    conn: Any, actor: Actor, limit: int, offset: int, usable: bool = False
) -> tuple[list[Any], int]:
    """The mailboxes whose settings the actor sees, or (`usable`) those it may send from."""
    scope = usable_mailboxes_scope(actor) if usable else list_scope(actor, Kind.MAILBOX)
    visible = (scope.everything, scope.user_id, scope.include_shared)
    rows = await conn.fetch(SQL.list_mailboxes, limit, offset, *visible)
    return list(rows), int(await conn.fetchval(SQL.count_mailboxes, *visible))


async def update_mailbox(
    ctx: ApiContext,
    conn: Any,
    actor: Actor,
    mailbox_id: uuid.UUID,
    top: dict[str, Any],
    smtp: dict[str, Any] | None,
    imap: dict[str, Any] | None,
    smtp_password: str | None,
    imap_password: str | None,
) -> Stored:
    """A partial update. A side whose server, security or login changes loses its stored
    password unless the same update gives a new one."""
    row = await mailbox_row(conn, actor, mailbox_id, Action.MAILBOX_EDIT)
    change = rules.update_mailbox(mailbox_state(row), top, smtp, imap, smtp_password, imap_password)
    check_mailbox_hosts(ctx.settings.mailbox_host_policy(), change.config)
    keep = rules.SecretChange.KEEP
    if (change.smtp_secret, change.imap_secret) != (keep, keep):
        await conn.execute(
            SQL.update_mailbox_secrets,
            mailbox_id,
            change.smtp_secret is not keep,
            _sealed(ctx, smtp_password),
            change.imap_secret is not keep,
            _sealed(ctx, imap_password),
        )
    return Stored(mailbox_id, await store(ctx, actor, mailbox_id, change.events))


async def delete_mailbox(ctx: ApiContext, conn: Any, actor: Actor, mailbox_id: uuid.UUID) -> None:
    row = await mailbox_row(conn, actor, mailbox_id, Action.MAILBOX_DELETE)
    used_by = await conn.fetchval(SQL.campaigns_using_mailbox, mailbox_id)
    await store(ctx, actor, mailbox_id, rules.delete_mailbox(mailbox_state(row), used_by))
    await conn.execute(SQL.delete_mailbox_secrets, mailbox_id)


async def share_mailbox(
    ctx: ApiContext, conn: Any, actor: Actor, mailbox_id: uuid.UUID, email: str
) -> None:
    row = await mailbox_row(conn, actor, mailbox_id, Action.MAILBOX_SHARE)
    user_id = await user_id_by_email(conn, email)
    await store(ctx, actor, mailbox_id, rules.share_mailbox(mailbox_state(row), user_id))


async def unshare_mailbox(
    ctx: ApiContext, conn: Any, actor: Actor, mailbox_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    row = await mailbox_row(conn, actor, mailbox_id, Action.MAILBOX_SHARE)
    state = mailbox_state(row)
    if user_id not in state.shared_with:
        raise NotFound("share")
    await store(ctx, actor, mailbox_id, rules.unshare_mailbox(state, user_id))


async def mailbox_shares(conn: Any, actor: Actor, mailbox_id: uuid.UUID) -> list[Any]:
    await mailbox_row(conn, actor, mailbox_id, Action.MAILBOX_SHARE)
    return list(await conn.fetch(SQL.mailbox_shares, mailbox_id))
