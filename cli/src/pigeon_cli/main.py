"""The `pigeon` command line."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer

from pigeon_cli import config
from pigeon_cli.campaign_cmd import app as campaign_app
from pigeon_cli.imap_sync_cmd import imap_sync
from pigeon_cli.secrets_cmd import app as secrets_app
from pigeon_cli.services import SERVICES
from pigeon_cli.settings import AllSettings
from pigeon_common import db, users
from pigeon_common.auth import MIN_PASSWORD_LENGTH, TokenSigner
from pigeon_common.domain.access import Role
from pigeon_common.jetstream import connect_nats, provision
from pigeon_common.logs import configure_logging
from pigeon_common.queries import QueryError
from pigeon_common.serving import run_service
from pigeon_common.validation import InvalidAddressError, normalize_address

app = typer.Typer(help="MC Pigeon: IMAP-first email campaigns.", no_args_is_help=True)
projector_app = typer.Typer(help="The read-model projector.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the admin, API and CLI.", no_args_is_help=True)
token_app = typer.Typer(help="Personal access tokens.", no_args_is_help=True)
app.add_typer(projector_app, name="projector")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(campaign_app, name="campaign")
app.add_typer(secrets_app, name="secrets")
app.command("imap-sync")(imap_sync)


@app.command()
def up() -> None:
    """Start the whole system: embedded NATS and PostgreSQL (unless their URLs are set),
    migrations, the first admin user, and every service. Ctrl-C stops it all."""
    from pigeon_cli.up import run_up

    settings = config.settings(AllSettings)
    configure_logging(settings.log_level)
    run_up(settings)


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help=f"one of: {', '.join(SERVICES)}")],
) -> None:
    """Run one service as production runs it (needs PIGEON_DATABASE_URL and PIGEON_NATS_URL)."""
    if service not in SERVICES:
        raise config.fail(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}")
    entry = SERVICES[service]
    # Each service reads its own class only: a bad variable of another one is not its concern.
    settings = (
        config.connected_settings(entry.settings)
        if entry.needs_servers
        else config.settings(entry.settings)
    )
    configure_logging(settings.log_level)
    try:
        run_service(lambda stop: entry.main(settings, stop))
    except QueryError as exc:  # a bug of this release, found at start: one line, no traceback
        raise config.fail(str(exc)) from None


@app.command("mcp")
def mcp_stdio(
    token: Annotated[
        str | None, typer.Option(envvar="PIGEON_TOKEN", help="personal access token")
    ] = None,
) -> None:
    """Run the MCP gateway over stdin/stdout for a desktop client, acting with PIGEON_TOKEN
    against the REST API at PIGEON_API_URL (default: the local `pigeon up`)."""
    from pigeon_mcp.service import run_stdio
    from pigeon_mcp.settings import McpSettings

    if not token:
        raise config.fail("set PIGEON_TOKEN (or pass --token) to a personal access token")
    settings = config.settings(McpSettings)
    configure_logging(settings.log_level)  # to stderr: stdout carries the protocol
    asyncio.run(run_stdio(settings, token))


@app.command()
def migrate() -> None:
    """Apply the database migrations that are not applied yet."""
    settings = config.connected_settings(AllSettings)
    assert settings.database_url is not None

    async def go() -> list[str]:
        conn = await db.connect(settings.database_url or "")
        try:
            return await db.migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(go())
    typer.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@projector_app.command("rebuild")
def projector_rebuild() -> None:
    """Rebuild the read models from every event, beside the live ones, then swap them in."""
    # Imported here: a service process must not import (and export) the projector's metrics.
    from pigeon_projector.rebuild import rebuild

    settings = config.connected_settings(AllSettings)
    database_url, nats_url = settings.require_servers()

    shown = [0.0]

    async def report(reached: int, target: int) -> None:
        now = time.monotonic()
        if now - shown[0] >= 5:
            shown[0] = now
            typer.echo(f"replayed {reached} of {target} events", err=True)

    async def go() -> int:
        nc = await connect_nats(nats_url, name="pigeon-cli", attempts=3)
        conn = await db.connect(database_url)
        try:
            await provision(nc.jetstream(), settings.jetstream_replicas)
            return await rebuild(
                conn, nc, nc.jetstream(), settings.projector_batch_size, progress=report
            )
        finally:
            await conn.close()
            await nc.close()

    seq = asyncio.run(go())
    typer.echo(f"read models rebuilt up to event {seq}")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="login email")],
    admin_role: Annotated[bool, typer.Option("--admin", help="make an administrator")] = False,
    role: Annotated[
        Role, typer.Option(help="admin, member (the default) or viewer; --admin means admin")
    ] = Role.MEMBER,
    password: Annotated[
        str | None,
        typer.Option(help="password (asked for when omitted; blank generates one)"),
    ] = None,
) -> None:
    """Create a user and print their personal access token."""
    settings = config.connected_settings(AllSettings)
    try:
        email = normalize_address(email)
    except InvalidAddressError as exc:
        raise config.fail(f"--email: {exc}") from None
    if password is None:
        password = typer.prompt(
            "Password (blank: generate)", default="", hide_input=True, show_default=False
        )
    if password and len(password) < MIN_PASSWORD_LENGTH:
        raise config.fail(f"--password: at least {MIN_PASSWORD_LENGTH} characters")

    async def go() -> users.NewUser:
        conn = await db.connect(settings.database_url or "")
        try:
            signer = TokenSigner(settings.keys())
            return await users.create_user(
                conn, signer, email, password or None, role=Role.ADMIN if admin_role else role
            )
        finally:
            await conn.close()

    try:
        user = asyncio.run(go())
    except users.UserExistsError:
        raise config.fail(f"a user with email {email} exists") from None
    typer.echo(f"user:     {user.email} ({user.id})")
    if not password:
        typer.echo(f"password: {user.password}")
    typer.echo(f"token:    {user.token}")
    typer.echo(f"read-only token: {user.read_only_token}")


@token_app.command("show")
def token_show(email: Annotated[str, typer.Option(help="the user's email")]) -> None:
    """Print a user's current personal access token."""
    settings = config.connected_settings(AllSettings)

    async def go() -> str | None:
        conn = await db.connect(settings.database_url or "")
        try:
            return await users.token_of(conn, TokenSigner(settings.keys()), email)
        finally:
            await conn.close()

    token = asyncio.run(go())
    if token is None:
        raise config.fail(f"no user with email {email}")
    typer.echo(token)
