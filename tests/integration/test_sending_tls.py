"""The sender over STARTTLS with certificate checks against a private CA, and the test
send (implicit TLS is covered at the SMTP session level in test_smtp_session.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio

from pigeon_embedded.nats import NatsServer
from pigeon_testing.dovecot import ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import Stack, stack_settings

from .sending_helpers import create_campaign, mailbox_for, parse, people, wait_status


@asynccontextmanager
async def stack_trusting(
    ca_file: Path, database_url: str, nats_url: str, data_dir: Path
) -> AsyncIterator[Stack]:
    """API, projector and sender that trust the certificates in `ca_file`."""
    settings = stack_settings(
        database_url,
        nats_url,
        data_dir,
        public_base_url="http://127.0.0.1:9",
        job_ack_wait_sec=5.0,
        tls_ca_file=ca_file,
    )
    stack = Stack(settings)
    await stack.start(sender=True)
    try:
        yield stack
    finally:
        await stack.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tls_stack(
    module_nats: NatsServer,
    module_database: str,
    smtp_server: SmtpTestServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """Trusts the session SMTP server's certificate (both test servers' certificates name
    localhost, so one bundle could not hold both)."""
    async with stack_trusting(
        smtp_server.cert_path, module_database, module_nats.url, tmp_path_factory.mktemp("d")
    ) as stack:
        yield stack


async def test_starttls_with_a_verified_certificate(
    tls_stack: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = tls_stack.client
    assert client is not None
    mailbox = mailbox_for(smtp, imap_user)
    mailbox["smtp"]["security"] = "starttls"
    mailbox["smtp"]["host"] = "localhost"
    campaign_id = await create_campaign(client, mailbox, people(3))
    await client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})
    await wait_status(client, campaign_id, {"done"})
    assert all(m.tls and m.auth_user == smtp.username for m in smtp.messages)
    assert len(smtp.messages) == 3


async def test_test_send_goes_to_one_address_only(
    tls_stack: Stack, smtp: SmtpTestServer, imap_user: ImapAccount
) -> None:
    client = tls_stack.client
    assert client is not None
    campaign_id = await create_campaign(client, mailbox_for(smtp, imap_user), people(5))
    sent = await client.post(
        f"/api/v1/campaigns/{campaign_id}/test-send",
        json={"email": "me@example.com", "name": "Me", "attributes": {"city": "Oslo"}},
    )
    assert sent.status_code == 200, sent.text
    (message,) = smtp.messages
    assert list(message.rcpt_tos) == ["me@example.com"]
    assert "Oslo" in parse(message.data).get_body(preferencelist=("plain",)).get_content()
    status = (await client.get(f"/api/v1/campaigns/{campaign_id}/status")).json()
    assert (status["status"], status["sent"]) == ("draft", 0)
