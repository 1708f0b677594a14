"""`pigeon secrets`: finishing a rotation of PIGEON_SECRET_KEY (docs/operations.md)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from pigeon_cli import config
from pigeon_cli.settings import AllSettings
from pigeon_common import db
from pigeon_common.secrets_box import SecretBox

app = typer.Typer(help="The server secret and what it protects.", no_args_is_help=True)


@app.command("reencrypt")
def reencrypt(
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="only count the passwords still under an older key; change nothing"
        ),
    ] = False,
) -> None:
    """Encrypt every stored mailbox password again with PIGEON_SECRET_KEY, reading each with
    whichever of PIGEON_SECRET_KEY and PIGEON_SECRET_KEYS_PREVIOUS fits. Exits 1 while a
    password is left that the current key alone cannot read."""
    from pigeon_api.commands.secret_rotation import Reencryption, reencrypt_mailbox_secrets

    settings = config.connected_settings(AllSettings)

    async def go() -> Reencryption:
        conn = await db.connect(settings.database_url or "")
        try:
            return await reencrypt_mailbox_secrets(
                conn, SecretBox(settings.keys()), write=not check
            )
        finally:
            await conn.close()

    result = asyncio.run(go())
    for mailbox in result.unreadable:
        typer.secho(
            f"mailbox {mailbox.name or '(deleted)'} ({mailbox.mailbox_id}): no listed key "
            "decrypts its passwords; set them again",
            fg="red",
            err=True,
        )
    if check:
        typer.echo(
            f"{result.reencrypted} of {result.mailboxes} mailboxes have passwords under an "
            "older key"
        )
        left = result.reencrypted
    else:
        typer.echo(
            f"re-encrypted the passwords of {result.reencrypted} of {result.mailboxes} "
            "mailboxes with the current key"
        )
        left = result.changed
        if left:
            typer.secho(f"{left} mailboxes kept changing while this ran: run it again", err=True)
    if left or result.unreadable:
        raise typer.Exit(1)
