"""The MCP gateway's Prometheus metrics: tool calls by tool and result."""

from __future__ import annotations

from prometheus_client import Counter

TOOL_CALLS = Counter(
    "pigeon_mcp_tool_calls_total",
    "MCP tool calls, by tool (unknown for a name no tool has) and result (ok, or error: "
    "refused arguments, an API error or a failure, as the caller was told).",
    ["tool", "result"],
)
UNKNOWN_TOOL = "unknown"  # one label for any name a client makes up


def count_call(tool: str, known: frozenset[str], ok: bool) -> None:
    TOOL_CALLS.labels(tool if tool in known else UNKNOWN_TOOL, "ok" if ok else "error").inc()
