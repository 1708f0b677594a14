"""Mailboxes: the user's own SMTP and IMAP servers. Passwords go in, never out. Each
route translates HTTP to a command of `pigeon_api.commands.mailboxes`."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse

from pigeon_api.commands import mailboxes as commands
from pigeon_api.commands.loading import mailbox_config
from pigeon_api.commands.storing import Stored
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.responses import NO_CONTENT, WRITE_ERRORS, accepted_or
from pigeon_api.routes.campaigns import IdempotencyKey
from pigeon_api.schemas.common import Accepted, Page, ShareCreate, SharePublic
from pigeon_api.schemas.mailboxes import (
    MailboxChoice,
    MailboxCreate,
    MailboxPublic,
    MailboxUpdate,
    ServerPublic,
)
from pigeon_common import events as ev
from pigeon_common.domain.access import Actor

router = APIRouter(prefix="/mailboxes", tags=["mailboxes"])


def public(row: Any) -> MailboxPublic:
    config = mailbox_config(row)
    return MailboxPublic(
        **config.model_dump(exclude={"smtp", "imap"}),
        id=row["id"],
        owner_id=row["owner_id"],
        shared_with=list(row["shared_with"] or ()),
        smtp=ServerPublic(
            **config.smtp.model_dump(),
            password_set=bool(row["smtp_password_set"] and config.smtp.username),
        ),
        imap=ServerPublic(**config.imap.model_dump(), password_set=bool(row["imap_password_set"])),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _answer(conn: Conn, actor: Actor, stored: Stored, code: int) -> Any:
    if not stored.projected:
        return accepted_or(stored.id)
    row = await commands.get_mailbox(conn, actor, stored.id)
    return JSONResponse(
        public(row).model_dump(mode="json"), status_code=code if stored.created else 200
    )


@router.post(
    "",
    operation_id="create_mailbox",
    response_model=MailboxPublic,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": MailboxPublic}, 202: {"model": Accepted}, **WRITE_ERRORS},
)
async def create_mailbox(
    body: MailboxCreate,
    user: CurrentUser,
    ctx: Ctx,
    conn: Conn,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Connect a mailbox, owned by the caller (admins and members)."""
    config = ev.MailboxConfig(
        **body.model_dump(exclude={"smtp", "imap"}),
        smtp=ev.ServerEndpoint(**body.smtp.model_dump(exclude={"password"})),
        imap=ev.ServerEndpoint(**body.imap.model_dump(exclude={"password"})),
    )
    stored = await commands.create_mailbox(
        ctx, conn, user, config, body.smtp.password, body.imap.password, idempotency_key
    )
    return await _answer(conn, user, stored, 201)


@router.get("", operation_id="list_mailboxes", response_model=Page[MailboxPublic])
async def list_mailboxes(
    user: CurrentUser,
    conn: Conn,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Page[MailboxPublic]:
    """The caller's own mailboxes (every mailbox, for an admin)."""
    rows, count = await commands.list_mailboxes(conn, user, limit, offset)
    return Page(data=[public(r) for r in rows], count=count)


@router.get("/usable", operation_id="list_usable_mailboxes", response_model=Page[MailboxChoice])
async def list_usable_mailboxes(
    user: CurrentUser,
    conn: Conn,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Page[MailboxChoice]:
    """The mailboxes the caller may pick as a campaign's sender: its own and those shared
    with it (name and sender only, no settings)."""
    rows, count = await commands.list_mailboxes(conn, user, limit, offset, usable=True)
    return Page(
        data=[MailboxChoice(**{f: r[f] for f in MailboxChoice.model_fields}) for r in rows],
        count=count,
    )


@router.get("/{mailbox_id}", operation_id="get_mailbox", response_model=MailboxPublic)
async def get_mailbox(mailbox_id: uuid.UUID, user: CurrentUser, conn: Conn) -> MailboxPublic:
    return public(await commands.get_mailbox(conn, user, mailbox_id))


@router.patch(
    "/{mailbox_id}",
    operation_id="update_mailbox",
    response_model=MailboxPublic,
    responses={202: {"model": Accepted}, **WRITE_ERRORS},
)
async def update_mailbox(
    mailbox_id: uuid.UUID, body: MailboxUpdate, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Any:
    """Change the given fields. Changing a side's host, port, security or username drops
    that side's stored password unless the same request gives a new `password`."""
    top = body.model_dump(exclude_unset=True, exclude={"smtp", "imap"})
    sides = {
        name: patch.model_dump(exclude_unset=True, exclude={"password"}) if patch else None
        for name, patch in (("smtp", body.smtp), ("imap", body.imap))
    }
    stored = await commands.update_mailbox(
        ctx,
        conn,
        user,
        mailbox_id,
        top,
        sides["smtp"],
        sides["imap"],
        body.smtp.password if body.smtp else None,
        body.imap.password if body.imap else None,
    )
    return await _answer(conn, user, stored, 200)


@router.delete(
    "/{mailbox_id}",
    operation_id="delete_mailbox",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
async def delete_mailbox(
    mailbox_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Response:
    await commands.delete_mailbox(ctx, conn, user, mailbox_id)
    return NO_CONTENT()


@router.get(
    "/{mailbox_id}/shares", operation_id="list_mailbox_shares", response_model=list[SharePublic]
)
async def list_mailbox_shares(
    mailbox_id: uuid.UUID, user: CurrentUser, conn: Conn
) -> list[SharePublic]:
    rows = await commands.mailbox_shares(conn, user, mailbox_id)
    return [SharePublic(user_id=r["user_id"], email=r["email"]) for r in rows]


@router.post(
    "/{mailbox_id}/shares",
    operation_id="share_mailbox",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
async def share_mailbox(
    mailbox_id: uuid.UUID, body: ShareCreate, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Response:
    """Let a user (by email) send through this mailbox: pick it for a campaign, without
    seeing or changing its settings."""
    await commands.share_mailbox(ctx, conn, user, mailbox_id, body.email)
    return NO_CONTENT()


@router.delete(
    "/{mailbox_id}/shares/{user_id}",
    operation_id="unshare_mailbox",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
async def unshare_mailbox(
    mailbox_id: uuid.UUID, user_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> Response:
    await commands.unshare_mailbox(ctx, conn, user, mailbox_id, user_id)
    return NO_CONTENT()
