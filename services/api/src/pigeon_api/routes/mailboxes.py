"""Mailboxes: the user's own SMTP and IMAP servers. Passwords go in, never out."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse

from pigeon_api.connect_errors import check_mailbox_hosts
from pigeon_api.context import SQL
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.errors import ApiError, not_found
from pigeon_api.schemas.common import Accepted, Page
from pigeon_api.schemas.mailboxes import (
    MailboxCreate,
    MailboxPublic,
    MailboxUpdate,
    ServerPatch,
    ServerPublic,
)
from pigeon_common import events as ev

router = APIRouter(prefix="/mailboxes", tags=["mailboxes"])


async def load_mailbox(conn: Conn, mailbox_id: uuid.UUID) -> Any:
    """The mailbox's row, or a 404."""
    row = await conn.fetchrow(SQL.mailbox_by_id, mailbox_id)
    if row is None:
        raise not_found("mailbox")
    return row


def _config_of(row: Any) -> ev.MailboxConfig:
    """The mailbox's configuration as its events carry it, from its read-model row."""

    def server(prefix: str) -> ev.ServerEndpoint:
        return ev.ServerEndpoint(
            **{field: row[f"{prefix}_{field}"] for field in ev.ServerEndpoint.model_fields}
        )

    fields = set(ev.MailboxConfig.model_fields) - {"smtp", "imap"}
    return ev.MailboxConfig(
        **{field: row[field] for field in fields}, smtp=server("smtp"), imap=server("imap")
    )


def _public(row: Any) -> MailboxPublic:
    config = _config_of(row)
    return MailboxPublic(
        **config.model_dump(exclude={"smtp", "imap"}),
        id=row["id"],
        smtp=ServerPublic(**config.smtp.model_dump()),
        imap=ServerPublic(**config.imap.model_dump()),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _patched_server(old: ev.ServerEndpoint, patch: ServerPatch | None) -> ev.ServerEndpoint:
    if patch is None:
        return old
    changes = patch.model_dump(exclude_unset=True, exclude={"password"})
    return old.model_copy(update=changes)


async def _answer(ctx: Ctx, conn: Conn, mailbox_id: uuid.UUID, projected: bool, code: int) -> Any:
    if not projected:
        return JSONResponse(Accepted(id=str(mailbox_id)).model_dump(), status_code=202)
    row = await load_mailbox(conn, mailbox_id)
    return JSONResponse(_public(row).model_dump(mode="json"), status_code=code)


@router.post(
    "",
    operation_id="create_mailbox",
    response_model=MailboxPublic,
    status_code=status.HTTP_201_CREATED,
    responses={202: {"model": Accepted}},
)
async def create_mailbox(body: MailboxCreate, user: CurrentUser, ctx: Ctx, conn: Conn) -> Any:
    mailbox_id = uuid.uuid4()
    config = ev.MailboxConfig(
        **body.model_dump(exclude={"smtp", "imap"}),
        smtp=ev.ServerEndpoint(**body.smtp.model_dump(exclude={"password"})),
        imap=ev.ServerEndpoint(**body.imap.model_dump(exclude={"password"})),
    )
    check_mailbox_hosts(ctx.settings.mailbox_host_policy(), config)
    await conn.execute(
        SQL.upsert_mailbox_secrets,
        mailbox_id,
        ctx.box.encrypt(body.smtp.password),
        ctx.box.encrypt(body.imap.password),
    )
    envelope = ev.envelope_for(
        ev.MailboxCreated(mailbox_id=mailbox_id, config=config), str(mailbox_id), actor=str(user.id)
    )
    projected = await ctx.commit(envelope)
    return await _answer(ctx, conn, mailbox_id, projected, 201)


@router.get("", operation_id="list_mailboxes", response_model=Page[MailboxPublic])
async def list_mailboxes(
    _user: CurrentUser,
    conn: Conn,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> Page[MailboxPublic]:
    rows = await conn.fetch(SQL.list_mailboxes, limit, offset)
    count = await conn.fetchval(SQL.count_mailboxes)
    return Page(data=[_public(r) for r in rows], count=count)


@router.get("/{mailbox_id}", operation_id="get_mailbox", response_model=MailboxPublic)
async def get_mailbox(mailbox_id: uuid.UUID, _user: CurrentUser, conn: Conn) -> MailboxPublic:
    return _public(await load_mailbox(conn, mailbox_id))


@router.patch(
    "/{mailbox_id}",
    operation_id="update_mailbox",
    response_model=MailboxPublic,
    responses={202: {"model": Accepted}},
)
async def update_mailbox(
    mailbox_id: uuid.UUID, body: MailboxUpdate, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Any:
    row = await load_mailbox(conn, mailbox_id)
    old = _config_of(row)
    top = body.model_dump(exclude_unset=True, exclude={"smtp", "imap"})
    if top.get("append_to_sent", "") is None:
        raise ApiError(
            422, "validation_error", "append_to_sent: must not be null", field="append_to_sent"
        )
    config = old.model_copy(
        update={
            **top,
            "smtp": _patched_server(old.smtp, body.smtp),
            "imap": _patched_server(old.imap, body.imap),
        }
    )
    check_mailbox_hosts(ctx.settings.mailbox_host_policy(), config)
    new_smtp = body.smtp.password if body.smtp else None
    new_imap = body.imap.password if body.imap else None
    if new_smtp is not None or new_imap is not None:
        await conn.execute(
            SQL.update_mailbox_secrets,
            mailbox_id,
            ctx.box.encrypt(new_smtp) if new_smtp is not None else None,
            ctx.box.encrypt(new_imap) if new_imap is not None else None,
        )
    event = ev.MailboxUpdated(
        mailbox_id=mailbox_id,
        config=config,
        passwords_changed=new_smtp is not None or new_imap is not None,
    )
    projected = await ctx.commit(ev.envelope_for(event, str(mailbox_id), actor=str(user.id)))
    return await _answer(ctx, conn, mailbox_id, projected, 200)


@router.delete(
    "/{mailbox_id}",
    operation_id="delete_mailbox",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_mailbox(
    mailbox_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Response:
    await load_mailbox(conn, mailbox_id)
    used_by = await conn.fetchval(SQL.campaigns_using_mailbox, mailbox_id)
    if used_by:
        raise ApiError(
            409,
            "conflict",
            f"mailbox is used by {used_by} campaign(s); change or delete them first",
        )
    event = ev.MailboxDeleted(mailbox_id=mailbox_id)
    await ctx.commit(ev.envelope_for(event, str(mailbox_id), actor=str(user.id)))
    await conn.execute(SQL.delete_mailbox_secrets, mailbox_id)
    return Response(status_code=204)
