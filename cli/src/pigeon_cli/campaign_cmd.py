"""`pigeon campaign …`: the seed's send, enqueue and status commands, over the REST API."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pigeon_cli import config
from pigeon_cli.api_client import ApiCallError, call, client
from pigeon_cli.settings import AllSettings
from pigeon_common import events as ev
from pigeon_common.jetstream import connect_nats

app = typer.Typer(help="Send campaigns and follow them.", no_args_is_help=True)
FINAL = {"done", "paused", "cancelled", "failed"}

CampaignOpt = Annotated[str | None, typer.Option("--campaign", help="campaign id")]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="part of the name; the most recent match wins")
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", envvar="PIGEON_TOKEN", help="API token (default: admin)")
]


def resolve(http: Any, campaign: str | None, name: str | None) -> dict[str, Any]:
    """The campaign by id, or the most recently created one whose name contains `name`."""
    if campaign:
        return dict(call(http, "GET", f"/campaigns/{campaign}"))
    if not name:
        raise config.fail("give --campaign ID or --name TEXT")
    offset = 0
    while True:
        page = call(http, "GET", "/campaigns", params={"limit": 1000, "offset": offset})
        for item in page["data"]:  # newest first
            if name.casefold() in item["name"].casefold():
                return dict(item)
        offset += 1000
        if offset >= page["count"]:
            raise config.fail(f"no campaign whose name contains {name!r}")


def _run(action: Any) -> None:
    try:
        action()
    except ApiCallError as exc:
        raise config.fail(str(exc)) from None


@app.command()
def send(
    campaign: CampaignOpt = None,
    name: NameOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="render, send nothing")] = False,
    batch_size: Annotated[int | None, typer.Option(min=1, help="recipients per chunk")] = None,
    sleep: Annotated[float | None, typer.Option(min=0, help="seconds between chunks")] = None,
    enqueue: Annotated[bool, typer.Option("--enqueue", help="enqueue and return")] = False,
    token: TokenOpt = None,
) -> None:
    """Send a campaign (or show what would be sent with --dry-run)."""

    def go() -> None:
        with client(token) as http:
            found = resolve(http, campaign, name)
            if dry_run:
                result = call(http, "POST", f"/campaigns/{found['id']}/dry-run", json={"limit": 3})
                for message in result["messages"]:
                    typer.secho(f"--- {message['email']}: {message['subject']}", bold=True)
                    typer.echo(message["text"])
                typer.echo(f"links: {json.dumps(result['links'])}")
                return
            body: dict[str, Any] = {}
            if batch_size is not None:
                body["batch_size"] = batch_size
            if sleep is not None:
                body["sleep_between_batches_sec"] = sleep
            started = call(http, "POST", f"/campaigns/{found['id']}/send", json=body)
            typer.echo(
                f"{found['name']}: {started['recipients']} recipients in {started['chunks']} chunks"
            )
            if not enqueue:
                follow(http, found["id"], started["recipients"])

    _run(go)


@app.command("enqueue")
def enqueue_cmd(
    campaign: CampaignOpt = None,
    name: NameOpt = None,
    chunk_size: Annotated[int | None, typer.Option(min=1, help="recipients per chunk")] = None,
    token: TokenOpt = None,
) -> None:
    """Enqueue a campaign's recipients as chunk jobs and return."""

    def go() -> None:
        with client(token) as http:
            found = resolve(http, campaign, name)
            body = {"batch_size": chunk_size} if chunk_size else {}
            started = call(http, "POST", f"/campaigns/{found['id']}/send", json=body)
            typer.echo(f"enqueued {started['recipients']} recipients in {started['chunks']} chunks")

    _run(go)


@app.command()
def status(campaign: CampaignOpt = None, name: NameOpt = None, token: TokenOpt = None) -> None:
    """Show a campaign's status and counts."""

    def go() -> None:
        with client(token) as http:
            found = resolve(http, campaign, name)
            state = call(http, "GET", f"/campaigns/{found['id']}/status")
            typer.echo(f"{found['name']} ({found['id']}): {state['status']} {state['reason']}")
            for key in ("recipients", "queued", "sent", "failed", "unknown", "suppressed"):
                typer.echo(f"  {key:<11} {state[key]}")

    _run(go)


# The events that give a recipient its one sending outcome.
OUTCOMES = frozenset(
    cls.type for cls in (ev.MessageSent, ev.MessageFailed, ev.MessageUnknown, ev.MessageSuppressed)
)


def follow(http: Any, campaign_id: str, total: int) -> None:
    """A progress bar fed by the message events, until the campaign stops sending."""
    settings = config.connected_settings(AllSettings)
    state = call(http, "GET", f"/campaigns/{campaign_id}/status")
    done = state["sent"] + state["failed"] + state["unknown"] + state["suppressed"]

    async def listen() -> str:
        nonlocal done
        nc = await connect_nats(settings.nats_url or "", name="pigeon-cli", attempts=3)
        finished = asyncio.Event()
        final = {"status": state["status"]}
        with Progress(
            TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as bar:
            task = bar.add_task("send", total=total, completed=done)

            async def on_event(msg: Any) -> None:
                nonlocal done
                data = json.loads(msg.data)
                if data.get("aggregate_id") != campaign_id:
                    return
                kind = data.get("type", "")
                if kind in OUTCOMES:  # not opens, bounces, replies: they share the prefix
                    done = min(done + 1, total)  # a re-published outcome adds nothing
                    bar.update(task, completed=done)
                elif kind in (
                    "campaign.completed",
                    "campaign.paused",
                    "campaign.cancelled",
                    "campaign.failed",
                ):
                    final["status"] = kind.split(".")[1]
                    finished.set()

            sub = await nc.subscribe("pigeon.events.>", cb=on_event)
            deadline = time.monotonic() + 24 * 3600
            while not finished.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(1)
                current = call(http, "GET", f"/campaigns/{campaign_id}/status")
                if current["status"] in FINAL:
                    done = (
                        current["sent"]
                        + current["failed"]
                        + current["unknown"]
                        + current["suppressed"]
                    )
                    bar.update(task, completed=done)
                    final["status"] = current["status"]
                    break
            await sub.unsubscribe()
        await nc.close()
        return str(final["status"])

    result = asyncio.run(listen())
    final_state = call(http, "GET", f"/campaigns/{campaign_id}/status")
    typer.echo(
        f"{result}: sent {final_state['sent']}, failed {final_state['failed']}, "
        f"unknown {final_state['unknown']}, suppressed {final_state['suppressed']}"
        + (f" ({final_state['reason']})" if final_state["reason"] else "")
    )
