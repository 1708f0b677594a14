"""`pigeon up`: the whole system on one machine.

Starts the embedded nats-server and PostgreSQL (unless PIGEON_NATS_URL /
PIGEON_DATABASE_URL are set), applies the migrations, creates the first administrator
on an empty database, then runs every service as its own child process and restarts
one that dies. Ctrl-C stops the services, then the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time

import typer

from pigeon_cli import runtime_file
from pigeon_cli.services import SERVICES, health_urls
from pigeon_cli.settings import AllSettings
from pigeon_common import db, users
from pigeon_common.auth import TokenSigner
from pigeon_common.domain.access import Role
from pigeon_embedded.nats import NatsServer
from pigeon_embedded.postgres import PostgresServer

STOP_GRACE_SEC = 10.0
RESTART_DELAY_SEC = 2.0


async def _prepare_database(settings: AllSettings, database_url: str) -> users.NewUser | None:
    conn = await db.connect(database_url)
    try:
        await db.migrate(conn)
        if await users.user_count(conn) == 0:
            signer = TokenSigner(settings.keys())
            return await users.create_user(conn, signer, settings.admin_email, role=Role.ADMIN)
        return None
    finally:
        await conn.close()


def _spawn(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pigeon_cli", "serve", name], env=env)


def _stop_children(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SEC
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_up(settings: AllSettings) -> None:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    nats: NatsServer | None = None
    postgres: PostgresServer | None = None
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def request_stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        nats_url = settings.nats_url
        if nats_url is None:
            nats = NatsServer(data_dir / "nats")
            (data_dir / "nats").mkdir(exist_ok=True)
            nats.start()
            nats_url = nats.url
            typer.echo(f"nats-server (JetStream) at {nats_url}, data in {data_dir / 'nats'}")
        database_url = settings.database_url
        if database_url is None:
            postgres = PostgresServer(data_dir / "postgres")
            postgres.start()
            database_url = postgres.url
            typer.echo(f"PostgreSQL at {database_url}, data in {data_dir / 'postgres'}")
        runtime_file.write(data_dir, database_url, nats_url, os.getpid())
        first_admin = asyncio.run(_prepare_database(settings, database_url))
        if first_admin is not None:
            typer.secho("\nFirst administrator (shown once, keep it safe):", bold=True)
            typer.echo(f"  email:    {first_admin.email}")
            typer.echo(f"  password: {first_admin.password}")
            typer.echo(f"  token:    {first_admin.token}")
            typer.echo(f"  read-only token: {first_admin.read_only_token}\n")
        env = {
            **os.environ,
            "PIGEON_DATABASE_URL": database_url,
            "PIGEON_NATS_URL": nats_url,
            "PIGEON_SECRET_KEY": settings.secret().decode(),
            "PIGEON_DATA_DIR": str(data_dir),
        }
        if settings.public_base_url is None:
            # Tracking links that work on this machine until a public URL is configured.
            env["PIGEON_PUBLIC_BASE_URL"] = health_urls(settings)["tracker"]
        for name in SERVICES:
            children[name] = _spawn(name, env)
        urls = health_urls(settings)
        typer.echo(f"REST API:      {urls['api']}/api/v1  (docs: {urls['api']}/api/v1/docs)")
        typer.echo(f"Admin:         {urls['api']}/admin/  (sign in with email and password)")
        typer.echo(f"MCP gateway:   {urls['mcp']}/mcp  (stdio: `pigeon mcp` with PIGEON_TOKEN)")
        for name, url in urls.items():
            typer.echo(f"{name:<14} {url}/healthz  {url}/readyz")
        typer.echo("Press Ctrl-C to stop.")
        while not stopping:
            for name, child in list(children.items()):
                if child.poll() is not None and not stopping:
                    typer.secho(
                        f"{name} exited with {child.returncode}; restarting", fg="yellow", err=True
                    )
                    time.sleep(RESTART_DELAY_SEC)
                    children[name] = _spawn(name, env)
            time.sleep(0.2)
        typer.echo("stopping…")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop_children(children)
        if postgres is not None:
            postgres.stop()
        if nats is not None:
            nats.stop()
        with contextlib.suppress(OSError):
            runtime_file.remove(data_dir)
