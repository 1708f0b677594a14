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
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from pigeon_embedded.nats import NatsServer
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack, stack_settings

from .api_helpers import campaign_body, mailbox_body

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
# These rotate or demote the fuzzer's own token: they run last, in a short pass of their own.
SELF_LOCKING = ("revoke_tokens", "change_password", "reset_user_password", "set_user_role")
MAIN_PASS_SEC = 65
LAST_PASS_SEC = 10


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


@pytest.fixture(scope="module")
def fuzz_smtp() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


async def _seed(stack: Stack, smtp: SmtpTestServer) -> dict[str, list[str]]:
    """Mailboxes and campaigns with recipients, so that generated requests reach the
    rules behind the 404s: a mailbox on a loopback SMTP test server, and one on a remote
    name that the loopback-only setting must refuse."""
    assert stack.client is not None
    local = {
        "host": smtp.host,
        "port": smtp.port,
        "security": "plain",
        "username": smtp.username,
        "password": smtp.password,
    }
    ids: dict[str, list[str]] = {"mailboxes": [], "campaigns": [], "recipients": []}
    for smtp in (local, {"host": "smtp.example.com", "port": 587}):
        body = mailbox_body(smtp={**mailbox_body()["smtp"], **smtp})
        response = await stack.client.post("/api/v1/mailboxes", json=body)
        assert response.status_code == 201, response.text
        mailbox_id = response.json()["id"]
        ids["mailboxes"].append(mailbox_id)
        for _ in range(2):
            body = campaign_body(mailbox_id=mailbox_id)
            response = await stack.client.post("/api/v1/campaigns", json=body)
            assert response.status_code == 201, response.text
            campaign_id = response.json()["id"]
            ids["campaigns"].append(campaign_id)
            recipient = {"email": "ann.lee@example.com", "name": "Ann"}
            response = await stack.client.post(
                f"/api/v1/campaigns/{campaign_id}/recipients", json=recipient
            )
            assert response.status_code == 201, response.text
            ids["recipients"].append(response.json()["id"])
    return ids


def _config(seeded: dict[str, list[str]]) -> str:
    """schemathesis.toml: the seeded ids are drawn for path and body ids most of the time,
    generated ones otherwise. The loopback mailbox is never a path id, so no PATCH points
    it at another local port (a test send would then answer 502, rightly, but not for a
    fault of ours); its campaigns test-send to the SMTP test server."""
    ids = {**seeded, "remote_mailboxes": seeded["mailboxes"][1:]}
    lines = []
    for name, values in ids.items():
        quoted = ", ".join(f'"{v}"' for v in values)
        lines += [f"[dictionaries.{name}]", f"values = [{quoted}]", ""]
    lines.append("[parameters]")
    for key, name in (
        ("path.campaign_id", "campaigns"),
        ("path.mailbox_id", "remote_mailboxes"),
        ("path.recipient_id", "recipients"),
        ("body.mailbox_id", "mailboxes"),
    ):
        lines.append(f'"{key}" = {{ dictionary = "{name}", probability = 0.8 }}')
    return "\n".join(lines) + "\n"


def _prepare(folder: Path, ids: dict[str, list[str]]) -> None:
    (folder / "schemathesis.toml").write_text(_config(ids), encoding="utf-8")
    for run in ("main", "last"):
        (folder / run).mkdir()


async def _schemathesis(stack: Stack, work: Path, *selection: str, seconds: int) -> str:
    """Run the schemathesis CLI as a child process (the API keeps serving in this loop),
    in its own folder (it keeps a cache there); the failure report is its own output."""
    executable = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(executable),
        "--config-file",
        str(work.parent / "schemathesis.toml"),
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
        str(work),
        *selection,
        cwd=work,
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


async def test_loopback_only_refuses_remote_servers_before_connecting(
    fuzz_stack: Stack, fuzz_smtp: SmtpTestServer
) -> None:
    client = fuzz_stack.client
    assert client is not None
    ids = await _seed(fuzz_stack, fuzz_smtp)
    local_campaign, remote_campaign = ids["campaigns"][0], ids["campaigns"][2]
    fuzz_smtp.clear()
    sent = await client.post(
        f"/api/v1/campaigns/{local_campaign}/test-send", json={"email": "bo@example.com"}
    )
    assert sent.status_code == 200, sent.text
    assert fuzz_smtp.wait_for(1)[0].rcpt_tos == ("bo@example.com",)
    refused = await client.post(
        f"/api/v1/campaigns/{remote_campaign}/test-send", json={"email": "bo@example.com"}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "mailbox_host_denied"
    assert "not resolved" in refused.json()["error"]["message"]
    sync = await client.post(f"/api/v1/mailboxes/{ids['mailboxes'][1]}/sync")
    assert sync.status_code == 422, sync.text
    assert sync.json()["error"]["field"] == "imap.host"
    check = await client.post(f"/api/v1/mailboxes/{ids['mailboxes'][1]}/test")
    assert check.status_code in (200, 422), check.text
    assert "not resolved" in check.text
    assert len(fuzz_smtp.messages) == 1


async def test_fuzzed_requests_get_no_server_error_and_match_the_schema(
    fuzz_stack: Stack, fuzz_smtp: SmtpTestServer, tmp_path: Path
) -> None:
    ids = await _seed(fuzz_stack, fuzz_smtp)
    fuzz_smtp.clear()
    _prepare(tmp_path, ids)
    excluded = [arg for op in SELF_LOCKING for arg in ("--exclude-operation-id", op)]
    report = await _schemathesis(fuzz_stack, tmp_path / "main", *excluded, seconds=MAIN_PASS_SEC)
    print(report[report.find("SUMMARY") :])  # the run's figures, shown with -s
    # A fuzzed write that the projector could not apply would not show as a 500, only as
    # 202s from then on: the read models must still follow.
    assert fuzz_stack.client is not None
    probe = await fuzz_stack.client.post("/api/v1/campaigns", json=campaign_body())
    assert probe.status_code == 201, probe.text
    included = [arg for op in SELF_LOCKING for arg in ("--include-operation-id", op)]
    await _schemathesis(fuzz_stack, tmp_path / "last", *included, seconds=LAST_PASS_SEC)
    # Every test send went to the loopback test server (the remote mailboxes are refused).
    assert fuzz_smtp.messages, "the fuzzer reached a test send"
