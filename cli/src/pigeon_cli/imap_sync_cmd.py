"""`pigeon imap-sync`: read the bounce folders now, in this process (the seed's
`campaign_imap_sync`), and print what was found."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from pigeon_cli import config
from pigeon_cli.settings import AllSettings
from pigeon_common import db
from pigeon_common.jetstream import connect_nats, provision
from pigeon_common.secrets_box import SecretBox
from pigeon_imap_sync.settings import ImapSyncSettings


def imap_sync(
    mailbox: Annotated[
        str | None, typer.Option(help="only this mailbox (its name or id); default: all")
    ] = None,
) -> None:
    """Sync the bounce folder of every mailbox that has one (or of one mailbox) now."""
    settings = config.connected_settings(AllSettings)
    reports = asyncio.run(sync_all(settings, mailbox))
    if not reports:
        raise config.fail(
            "no mailbox with a bounce folder" + (f" matches {mailbox!r}" if mailbox else "")
        )
    failed = False
    for name, report in reports:
        if report["error"]:
            failed = True
            typer.secho(f"{name}: {report['error']}", fg="red", err=True)
            continue
        typer.echo(
            f"{name} ({report['folder']}): read {report['read']}, bounced {report['bounced']}, "
            f"deferred {report['deferred']}, replied {report['replied']}, "
            f"auto-replied {report['auto_replied']}, skipped {report['skipped']}"
            + (" (busy: another sync is running)" if report["busy"] else "")
        )
    if failed:
        raise typer.Exit(1)


async def sync_all(
    settings: ImapSyncSettings, only: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """One sync of each mailbox with a bounce folder (or of `only`, by name or id)."""
    from pigeon_imap_sync.sync import MailboxSync, load_accounts

    database_url, nats_url = settings.require_servers()
    nc = await connect_nats(nats_url, name="pigeon-cli", attempts=3)
    pool = await db.open_pool(database_url, max_size=3)
    try:
        js = nc.jetstream()
        await provision(js, settings.jetstream_replicas)
        accounts = await load_accounts(pool, SecretBox(settings.keys()))
        if only is not None:
            accounts = [a for a in accounts if only in (a.name, str(a.id))]
        syncer = MailboxSync(pool, js, settings)
        return [
            (account.name, (await syncer.sync(account, wait_sec=30)).as_dict())
            for account in accounts
        ]
    finally:
        await pool.close()
        await nc.drain()
