"""Test a mailbox's connection: SMTP login, IMAP login and its folders (nothing changes)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from pigeon_api.commands.connection import try_connection
from pigeon_api.deps import Conn, Ctx, CurrentUser
from pigeon_api.responses import WRITE_ERRORS
from pigeon_api.schemas.connection import ConnectionTestPublic, FolderPublic, LoginResult

router = APIRouter(prefix="/mailboxes/{mailbox_id}", tags=["mailboxes"])


@router.post(
    "/test",
    operation_id="test_mailbox_connection",
    response_model=ConnectionTestPublic,
    responses=WRITE_ERRORS,
)
async def test_mailbox_connection(
    mailbox_id: uuid.UUID, user: CurrentUser, ctx: Ctx, conn: Conn
) -> ConnectionTestPublic:
    """Log in to the mailbox's SMTP and IMAP servers with the stored passwords and list
    the IMAP folders with their special-use flags. A failed login is reported in the
    answer (200), not as an error. Only the owner or an administrator may."""
    report = await try_connection(ctx, conn, user, mailbox_id)
    return ConnectionTestPublic(
        smtp=LoginResult(ok=report.smtp.ok, message=report.smtp.message),
        imap=LoginResult(ok=report.imap.ok, message=report.imap.message),
        folders=[
            FolderPublic(
                name=f.name, raw_name=f.raw_name, flags=list(f.flags), selectable=f.selectable
            )
            for f in report.folders
        ],
        suggested_sent_folder=report.suggested_sent,
        suggested_bounce_folder=report.suggested_bounce,
    )
