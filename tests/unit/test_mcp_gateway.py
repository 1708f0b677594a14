"""The MCP gateway's pure parts: the tool catalog in docs/mcp.md, the send preview, the
API error mapping and the environment resource. No servers: listing tools calls no API."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from mcp import Client

from pigeon_mcp.api import Api, error_from_body
from pigeon_mcp.environment import environment
from pigeon_mcp.send_preview import preview
from pigeon_mcp.server import create_server
from pigeon_mcp.settings import McpSettings

MCP_DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"
ROW = re.compile(
    r"^\| `(?P<name>[a-z_]+)` \| (?P<ro>yes|no) \| (?P<de>yes|no) \| (?P<id>yes|no) \| "
    r"(?P<ow>yes|no) \| (?P<what>.+) \|$",
    re.MULTILINE,
)


def _server(**settings: object):
    return create_server(McpSettings(**settings), Api("http://127.0.0.1:9"))  # type: ignore[arg-type]


async def test_docs_mcp_lists_every_tool_with_its_hints_and_description() -> None:
    documented = {m["name"]: m for m in ROW.finditer(MCP_DOC.read_text(encoding="utf-8"))}
    async with Client(_server()) as client:
        tools = (await client.list_tools()).tools
    assert set(documented) == {t.name for t in tools}
    yes = {True: "yes", False: "no"}
    for tool in tools:
        row, hints = documented[tool.name], tool.annotations
        assert hints is not None, tool.name
        assert (row["ro"], row["de"], row["id"], row["ow"]) == (
            yes[hints.read_only_hint],
            yes[hints.destructive_hint],
            yes[hints.idempotent_hint],
            yes[hints.open_world_hint],
        ), tool.name
        assert row["what"] == " ".join((tool.description or "").split()), tool.name


async def test_read_only_tools_are_not_destructive_and_writes_are_not_read_only() -> None:
    async with Client(_server()) as client:
        tools = (await client.list_tools()).tools
    for tool in tools:
        hints = tool.annotations
        assert hints is not None
        reads = tool.name.startswith(("list_", "get_", "campaign_")) or tool.name in (
            "dry_run",
            "message_story",
            "mailbox_sync_state",
        )
        assert hints.read_only_hint is reads, tool.name
        if reads:
            assert not hints.destructive_hint and hints.idempotent_hint, tool.name
    creates = [t for t in tools if t.name.startswith("create_") or t.name == "clone_campaign"]
    for tool in creates:
        assert "idempotency_key" in tool.input_schema["properties"], tool.name


async def test_stdio_server_lists_resources_prompts_and_instructions() -> None:
    server = create_server(McpSettings(), Api("http://127.0.0.1:9"), stdio_token="pgn_x")
    async with Client(server) as client:
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
        prompts = (await client.list_prompts()).prompts
        assert "confirm: true" in (client.instructions or "")
    assert [str(r.uri) for r in resources] == ["pigeon://environment"]
    assert [t.uri_template for t in templates] == ["pigeon://campaigns/{campaign_id}/report"]
    assert {p.name for p in prompts} == {"draft_campaign", "summarise_campaign"}


async def test_an_unreachable_api_is_a_tool_error_not_a_crash() -> None:
    server = create_server(McpSettings(), Api("http://127.0.0.1:9"), stdio_token="pgn_x")
    async with Client(server) as client:
        result = await client.call_tool("list_campaigns", {})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "not reachable" in text and "Traceback" not in text


def test_environment_uses_the_public_base_url_or_the_local_tracker() -> None:
    public = environment(McpSettings(public_base_url="https://t.example.com/"))  # type: ignore[arg-type]
    assert public.public_base_url == "https://t.example.com"
    assert public.url_forms.unsubscribe == "https://t.example.com/campaigns/unsub/<token>/"
    local = environment(McpSettings(tracker_port=9999))
    assert local.url_forms.pixel == "http://127.0.0.1:9999/campaigns/o/<token>/p.png"
    assert "track_url(url)" in local.template_helpers


def test_api_errors_keep_message_field_and_code() -> None:
    body = {"error": {"code": "validation_error", "message": "subject: bad", "field": "subject"}}
    error = error_from_body(422, body)
    assert (error.status, error.code, error.field) == (422, "validation_error", "subject")
    assert str(error) == "subject: bad (field: subject) [validation_error, HTTP 422]"
    proxy = error_from_body(502, None, "<html>Bad gateway</html>")
    assert proxy.code == "error" and "502" in str(proxy)


CID = uuid.UUID(int=1)


@pytest.mark.parametrize(
    ("emails", "suppressed", "count", "expected"),
    [
        (["a@x.org", "B@x.org", "c@x.org"], ["b@X.org"], 3, (1, True, 2)),
        (["a@x.org"], [], 1, (0, True, 1)),
        (["a@x.org"], ["a@x.org"], 5, (1, False, 4)),
    ],
)
def test_preview_counts_suppressed_recipients(
    emails: list[str], suppressed: list[str], count: int, expected: tuple[int, bool, int]
) -> None:
    result = preview(
        campaign_id=CID,
        status="draft",
        has_mailbox=True,
        recipients=count,
        recipient_emails=emails,
        suppressed_emails=suppressed,
        first=("a@x.org", "Hi A"),
        template_error=None,
    )
    assert (result.suppressed, result.suppressed_exact, result.would_send) == expected
    assert result.sent is False and result.can_send and result.first_subject == "Hi A"
    assert bool(result.warnings) is (not result.suppressed_exact)


def test_preview_says_why_a_send_would_not_go() -> None:
    result = preview(
        campaign_id=CID,
        status="done",
        has_mailbox=False,
        recipients=0,
        recipient_emails=[],
        suppressed_emails=[],
        first=None,
        template_error="undefined variable 'recipient.citty'",
    )
    assert not result.can_send and result.would_send == 0
    joined = " ".join(result.warnings)
    for words in ("is done", "no mailbox", "no recipients", "recipient.citty"):
        assert words in joined
