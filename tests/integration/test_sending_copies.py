"""Sender truth after a crash (DESIGN §2 invariant 3): a sender killed mid-chunk, or
between the SMTP server's acceptance and filing the copy, and a Sent folder that is away
during the chunk. Every message the SMTP server accepted ends up in Sent exactly once,
`appended` says so, `at` is the acceptance time, and the campaign finishes soon after
another sender took over."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import signal
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pigeon_common.render import parse_message_id
from pigeon_sender.mailcopy import FAULT_ENV, KILL_AFTER_APPEND, KILL_BEFORE_APPEND
from pigeon_testing.dovecot import DovecotServer, ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack

from .sending_helpers import create_campaign, mailbox_for, messages, parse, people, wait_status

TAKEOVER_BUDGET_SEC = 10.0


@pytest.fixture(autouse=True)
def _no_leftover_faults(smtp: SmtpTestServer) -> None:
    smtp.reset_faults()


async def _sender(stack: Stack, log: Path, **extra: str) -> asyncio.subprocess.Process:
    """A sender in its own process (so it can be SIGKILLed), one worker."""
    settings = stack.settings
    env = {
        **{k: v for k, v in os.environ.items() if k != FAULT_ENV},
        "PIGEON_DATABASE_URL": settings.database_url or "",
        "PIGEON_NATS_URL": settings.nats_url or "",
        "PIGEON_SECRET_KEY": settings.secret().decode(),
        "PIGEON_PUBLIC_BASE_URL": str(settings.public_base_url),
        "PIGEON_SENDER_PORT": "0",
        "PIGEON_SENDER_CONCURRENCY": "1",
        # Short, as a deployment that wants fast takeovers sets it: the dead sender's chunk
        # comes back 3 s after its last sign of life, not 5 of the 10 s budget.
        "PIGEON_JOB_ACK_WAIT_SEC": "3",
        **extra,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pigeon_cli",
        "serve",
        "sender",
        env=env,
        stdout=log.open("wb"),
        stderr=asyncio.subprocess.STDOUT,
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        await process.wait()


def _recipient_of(raw: bytes) -> uuid.UUID:
    parsed = parse_message_id(parse(raw)["Message-ID"].strip("<>"))
    assert parsed is not None
    return parsed[1]


async def _check_truth(
    client: Any,
    campaign_id: str,
    smtp: SmtpTestServer,
    dovecot: DovecotServer,
    account: ImapAccount,
    total: int,
) -> dict[str, Any]:
    """Everything the issue's "must hold" asks of a finished campaign."""
    state = (await client.get(f"/api/v1/campaigns/{campaign_id}/status")).json()
    accepted = [m for m in smtp.messages if campaign_id in parse(m.data)["Message-ID"]]
    counts = collections.Counter(r for m in accepted for r in m.rcpt_tos)
    assert counts and max(counts.values()) == 1, "somebody got the campaign twice"
    assert state["sent"] + state["unknown"] == total and state["failed"] == 0
    assert state["copies_pending"] == 0

    copies = dovecot.fetch_all(account.username, "Sent")
    in_sent = collections.Counter(_recipient_of(raw) for raw in copies)
    assert max(in_sent.values()) == 1, "a copy is in Sent twice"
    by_recipient = {_recipient_of(m.data): m for m in accepted}
    missing = set(by_recipient) - set(in_sent)
    assert not missing, f"{len(missing)} accepted messages have no copy in Sent"
    for raw in copies:  # byte-identical to what the SMTP server got
        recipient = _recipient_of(raw)
        if recipient in by_recipient:
            assert raw == by_recipient[recipient].data

    rows = {uuid.UUID(r["recipient_id"]): r for r in await messages(client, campaign_id)}
    unknown = {rid for rid, r in rows.items() if r["status"] == "unknown"}
    # A copy in Sent whose message the server never got can only be one in flight at the
    # kill (unknown: it may have gone out, so it is filed too).
    assert set(in_sent) - set(by_recipient) <= unknown
    for rid, row in rows.items():
        assert row["appended"] is (rid in in_sent), row
    for rid, message in by_recipient.items():
        row = rows[rid]
        if row["status"] == "sent":
            # `at` is when the server accepted it, not when a later attempt restated it.
            assert row["at"] is not None
            at = datetime.fromisoformat(row["at"].replace("Z", "+00:00"))
            delta = at.timestamp() - message.received_at
            assert abs(delta) < 1.0, (row, message.received_at)
    return state


async def _wait_sent(smtp: SmtpTestServer, campaign_id: str, count: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        if sum(1 for m in smtp.messages if campaign_id.encode() in m.data) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} messages reached the SMTP server")


async def test_a_sender_killed_mid_chunk_leaves_every_copy_filed_once(
    sending_stack: Stack,
    smtp: SmtpTestServer,
    dovecot: DovecotServer,
    imap_user: ImapAccount,
    tmp_path: Path,
) -> None:
    client = sending_stack.client
    assert client is not None
    # Small enough that the budget measures the takeover, not the sending rate of a
    # loaded machine: the kill comes inside the second of four chunks.
    total = 400
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(total))
    first = await _sender(sending_stack, tmp_path / "first.log")
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": 100})
    await _wait_sent(smtp, campaign_id, 150)  # inside the second chunk
    first.send_signal(signal.SIGKILL)
    await first.wait()
    loop = asyncio.get_running_loop()
    restarted = loop.time()
    second = await _sender(sending_stack, tmp_path / "second.log")
    try:
        await wait_status(client, campaign_id, {"done"}, timeout=60)
        took = loop.time() - restarted
    finally:
        await _stop(second)
    state = await _check_truth(client, campaign_id, smtp, dovecot, imap_user, total)
    assert state["unknown"] <= 3, state
    assert took < TAKEOVER_BUDGET_SEC, f"done {took:.1f} s after the restart"


@pytest.mark.parametrize("fault", [KILL_BEFORE_APPEND, KILL_AFTER_APPEND])
async def test_a_sender_killed_between_acceptance_and_filing_leaves_no_copy_missing_or_twice(
    fault: str,
    sending_stack: Stack,
    smtp: SmtpTestServer,
    dovecot: DovecotServer,
    imap_user: ImapAccount,
    tmp_path: Path,
) -> None:
    client = sending_stack.client
    assert client is not None
    total = 120
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(total))
    first = await _sender(sending_stack, tmp_path / "first.log", **{FAULT_ENV: fault})
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": 60})
    assert await asyncio.wait_for(first.wait(), 60) == -signal.SIGKILL  # killed itself
    assert len(dovecot.fetch_all(imap_user.username, "Sent")) > 0 or fault == KILL_BEFORE_APPEND
    second = await _sender(sending_stack, tmp_path / "second.log")
    try:
        await wait_status(client, campaign_id, {"done"}, timeout=60)
    finally:
        await _stop(second)
    state = await _check_truth(client, campaign_id, smtp, dovecot, imap_user, total)
    assert (state["sent"], state["unknown"]) == (total, 0)


class ImapDoor:
    """A loopback TCP relay in front of the real Dovecot that can be shut (connections
    refused, as from an IMAP server that is down) and opened again on the same port."""

    def __init__(self, target: ImapAccount) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self.port = 0

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def shut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._target.host, self._target.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_copies_wait_while_the_sent_folder_is_away_and_are_filed_when_it_is_back(
    running_sender: Stack, smtp: SmtpTestServer, dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    client = running_sender.client
    assert client is not None
    door = ImapDoor(imap_user)
    await door.open()
    try:
        await door.shut()  # the IMAP server is away when the chunks run
        via_door = dataclasses.replace(imap_user, port=door.port)
        total = 30
        campaign_id = await create_campaign(client, mailbox_for(smtp, via_door), people(total))
        await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={"batch_size": 15})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        state: dict[str, Any] = {}
        while loop.time() < deadline:
            state = (await client.get(f"/api/v1/campaigns/{campaign_id}/status")).json()
            if state["copies_pending"] == total:
                break
            await asyncio.sleep(0.1)
        assert state["copies_pending"] == total and state["sent"] == total, state
        assert state["status"] == "sending", "a campaign with copies owed is not done yet"
        assert dovecot.fetch_all(imap_user.username, "Sent") == []
        await door.open()
        await wait_status(client, campaign_id, {"done"}, timeout=60)
        await _check_truth(client, campaign_id, smtp, dovecot, imap_user, total)
    finally:
        await door.shut()
