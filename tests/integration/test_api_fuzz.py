"""Schemathesis against the live API over a real socket: no server error, every response
matches the OpenAPI document (status code, content type, body schema).

Generated mailboxes carry random host names, so nothing here may try to reach them: no
sender and no imap-sync run (sync answers 503), and PIGEON_MAILBOX_HOSTS_LOOPBACK_ONLY
refuses a test send to a non-loopback host before any name is resolved.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from pigeon_embedded.nats import NatsServer
from pigeon_testing.stack import Stack, stack_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
# These rotate or demote the fuzzer's own token: they run last, in a short pass of their own.
SELF_LOCKING = ("revoke_tokens", "change_password", "reset_user_password", "set_user_role")
MAIN_PASS_SEC = 75
LAST_PASS_SEC = 15


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_stack(
    module_nats: NatsServer, module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    settings = stack_settings(
        module_database,
        module_nats.url,
        tmp_path_factory.mktemp("data"),
        mailbox_hosts_loopback_only=True,
        read_your_writes_timeout_sec=2.0,
    )
    running = Stack(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.close()


async def _schemathesis(stack: Stack, report: Path, *selection: str, seconds: int) -> str:
    """Run the schemathesis CLI as a child process (the API keeps serving in this loop);
    the failure report is its own output."""
    executable = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(executable),
        "run",
        f"{stack.base_url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {stack.token}",
        "--checks",
        CHECKS,
        "--max-time",
        str(seconds),
        "--workers",
        "1",
        "--seed",
        "8",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(report),
        *selection,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=seconds + 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = out.decode(errors="replace")
    assert process.returncode == 0, text[-20_000:]
    return text


async def test_fuzzed_requests_get_no_server_error_and_match_the_schema(
    fuzz_stack: Stack, tmp_path: Path
) -> None:
    excluded = [arg for op in SELF_LOCKING for arg in ("--exclude-operation-id", op)]
    await _schemathesis(fuzz_stack, tmp_path / "main", *excluded, seconds=MAIN_PASS_SEC)
    included = [arg for op in SELF_LOCKING for arg in ("--include-operation-id", op)]
    await _schemathesis(fuzz_stack, tmp_path / "last", *included, seconds=LAST_PASS_SEC)
