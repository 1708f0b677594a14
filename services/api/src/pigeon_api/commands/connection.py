"""Test a mailbox's connection: log in to its SMTP server, log in to its IMAP server and
list the folders with their special-use flags (RFC 6154), so a person can pick the Sent
and bounce folders from what the server really has. Nothing is sent or changed.

`suggest_folders` is pure (tested without a server); `try_connection` only moves bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pigeon_api.commands.loading import mailbox_row
from pigeon_api.context import SQL, ApiContext
from pigeon_common.connect_failure import imap_failure
from pigeon_common.domain.access import Action, Actor
from pigeon_common.imap_client import open_imap
from pigeon_common.imap_protocol import ImapError, Mailbox
from pigeon_common.smtp import SmtpConnectError, SmtpEndpoint, SmtpSession

TIMEOUT_SEC = 15.0
SENT_FLAG = "\\sent"
JUNK_FLAG = "\\junk"
# Folder names that people give a bounce folder (compared case-insensitively).
BOUNCE_NAMES = ("bounces", "bounce", "bounced", "returned", "undeliverable")


@dataclass(frozen=True, slots=True)
class Folder:
    name: str  # for display (modified UTF-7 decoded)
    raw_name: str  # what is stored and sent in IMAP commands
    flags: tuple[str, ...]
    selectable: bool


@dataclass(frozen=True, slots=True)
class SideResult:
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """What each login said and, when IMAP worked, the folders and the suggested picks."""

    smtp: SideResult
    imap: SideResult
    folders: list[Folder] = field(default_factory=list)
    suggested_sent: str | None = None
    suggested_bounce: str | None = None


def folder_of(mailbox: Mailbox) -> Folder:
    return Folder(mailbox.name, mailbox.raw_name, tuple(sorted(mailbox.flags)), mailbox.selectable)


def suggest_folders(folders: list[Folder]) -> tuple[str | None, str | None]:
    """The folder flagged \\Sent (else one named Sent), and a bounce folder by its name
    (never the Sent folder or the inbox: the bounce sync moves mail it has read)."""
    usable = [f for f in folders if f.selectable]

    def flagged(flag: str) -> Folder | None:
        return next((f for f in usable if flag in {x.lower() for x in f.flags}), None)

    sent = flagged(SENT_FLAG) or next((f for f in usable if f.name.lower() == "sent"), None)
    bounce = next(
        (
            f
            for f in usable
            if f.name.rsplit("/", 1)[-1].rsplit(".", 1)[-1].lower() in BOUNCE_NAMES
            and f is not sent
        ),
        None,
    )
    return (sent.raw_name if sent else None, bounce.raw_name if bounce else None)


async def _smtp(ctx: ApiContext, row: Any, password: str) -> SideResult:
    session = SmtpSession(
        SmtpEndpoint(
            host=row["smtp_host"],
            port=row["smtp_port"],
            security=row["smtp_security"],
            username=row["smtp_username"],
            password=password,
            tls_context=ctx.settings.tls_context(),
            timeout=TIMEOUT_SEC,
            policy=ctx.settings.mailbox_host_policy(),
        )
    )
    try:
        await session.connect()
    except SmtpConnectError as exc:
        # The failure's message never echoes bytes a remote sent that are not a reply.
        return SideResult(False, exc.failure.message)
    finally:
        await session.close()
    who = f"as {row['smtp_username']}" if row["smtp_username"] else "without login"
    return SideResult(True, f"SMTP: connected to {row['smtp_host']} {who}")


async def _imap(ctx: ApiContext, row: Any, password: str) -> tuple[SideResult, list[Folder]]:
    try:
        imap = await open_imap(
            row["imap_host"],
            row["imap_port"],
            row["imap_security"],
            row["imap_username"],
            password,
            ssl_context=ctx.settings.tls_context(),
            timeout=TIMEOUT_SEC,
            policy=ctx.settings.mailbox_host_policy(),
        )
    except (ImapError, OSError, TimeoutError) as exc:
        host, port = row["imap_host"], row["imap_port"]
        return SideResult(False, imap_failure(exc, host, port).message), []
    try:
        async with imap:
            folders = [folder_of(m) for m in await imap.list_mailboxes()]
    except (ImapError, OSError, TimeoutError) as exc:
        failure = imap_failure(exc, row["imap_host"], row["imap_port"])
        return SideResult(False, f"logged in, but LIST failed: {failure.message}"), []
    message = f"IMAP: logged in to {row['imap_host']} as {row['imap_username']}"
    return SideResult(True, f"{message}, {len(folders)} folder(s)"), folders


async def try_connection(
    ctx: ApiContext, conn: Any, actor: Actor, mailbox_id: uuid.UUID
) -> ConnectionReport:
    """Log in to both servers with the stored passwords (the owner's or an admin's call:
    it connects to the servers, like sync now)."""
    await mailbox_row(conn, actor, mailbox_id, Action.MAILBOX_SYNC)
    row = await conn.fetchrow(SQL.mailbox_for_send, mailbox_id)
    if row is None:
        missing = SideResult(False, "no stored password: edit the mailbox and give it")
        return ConnectionReport(missing, missing)

    smtp = await _smtp(ctx, row, ctx.box.decrypt(row["smtp_password"]))
    imap, folders = await _imap(ctx, row, ctx.box.decrypt(row["imap_password"]))
    sent, bounce = suggest_folders(folders)
    return ConnectionReport(smtp, imap, folders, sent, bounce)
