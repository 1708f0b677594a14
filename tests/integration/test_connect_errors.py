"""Connection errors against real TCP peers on loopback: each failure has its kind, and
the peer's bytes are never echoed unless they are a well-formed SMTP or IMAP answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio

from pigeon_common.connect_failure import ConnectFailure, FailureKind, imap_failure
from pigeon_common.host_policy import ALLOW_ALL, HostPolicy, parse_networks
from pigeon_common.imap_client import open_imap
from pigeon_common.imap_protocol import ImapError
from pigeon_common.smtp import SmtpConnectError, SmtpEndpoint, SmtpSession
from pigeon_embedded.nats import NatsServer
from pigeon_embedded.ports import free_port
from pigeon_testing.stack import Stack, stack_settings

from .api_helpers import assert_error_shape

pytestmark = pytest.mark.asyncio(loop_scope="session")

TIMEOUT = 1.0
GARBAGE = b"\x00\x01\xfegarbage-from-the-peer\xff\r\n"
NATS_INFO = b'INFO {"server_id":"NCXSECRETID","version":"2.10.7","max_payload":1048576}\r\n'
# What must never show up in an error: distinctive bytes of the banners above.
SECRETS = ("garbage-from-the-peer", "NCXSECRETID", "server_id", "INFO {")


@dataclass
class Peer:
    """A TCP server on 127.0.0.1 that greets every connection with `banner` (None: says
    nothing), or hangs up at once (`close`)."""

    banner: bytes | None
    close: bool = False
    port: int = 0
    connections: int = 0
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def __aenter__(self) -> Peer:
        async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self._writers.append(writer)
            if self.close:
                writer.close()
                return
            if self.banner is not None:
                writer.write(self.banner)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def _smtp(
    port: int, security: str = "plain", host: str = "127.0.0.1", policy: HostPolicy = ALLOW_ALL
) -> ConnectFailure:
    endpoint = SmtpEndpoint(host, port, security, "", "", timeout=TIMEOUT, policy=policy)
    session = SmtpSession(endpoint)
    with pytest.raises(SmtpConnectError) as caught:
        await session.connect()
    await session.close()
    failure = caught.value.failure
    for shown in (failure.message, caught.value.outcome.reply, str(caught.value)):
        assert not any(secret in shown for secret in SECRETS), shown
    return failure


async def _imap(
    port: int, security: str = "plain", host: str = "127.0.0.1", policy: HostPolicy = ALLOW_ALL
) -> ConnectFailure:
    with pytest.raises((ImapError, OSError)) as caught:
        await open_imap(host, port, security, "u", "p", timeout=TIMEOUT, policy=policy)  # type: ignore[arg-type]
    failure = imap_failure(caught.value, host, port)
    assert not any(secret in failure.message for secret in SECRETS), failure.message
    return failure


@pytest.mark.parametrize("connect", [_smtp, _imap], ids=["smtp", "imap"])
@pytest.mark.parametrize(
    ("banner", "close", "kind"),
    [
        (GARBAGE, False, FailureKind.NOT_A_SERVER),
        (NATS_INFO, False, FailureKind.NOT_A_SERVER),
        (None, False, FailureKind.TIMEOUT),
        (None, True, FailureKind.CLOSED),
    ],
    ids=["garbage", "nats-banner", "silent", "closes"],
)
async def test_each_peer_gives_its_kind(
    connect: object, banner: bytes | None, close: bool, kind: FailureKind
) -> None:
    async with Peer(banner, close) as peer:
        failure = await connect(peer.port)  # type: ignore[operator]
    assert failure.kind is kind, failure.message
    assert peer.connections == 1


async def test_a_refused_port() -> None:
    port = free_port()  # nothing listens there
    assert (await _smtp(port)).kind is FailureKind.REFUSED
    imap = await _imap(port)
    assert imap.kind is FailureKind.REFUSED
    assert (
        imap.message
        == f"IMAP server 127.0.0.1:{port}: connection refused (nothing listens on that port)"
    )


async def test_tls_to_a_plain_server() -> None:
    async with Peer(b"220 plain.example ESMTP\r\n") as smtp, Peer(b"* OK plain IMAP\r\n") as imap:
        assert (await _smtp(smtp.port, "tls")).kind is FailureKind.TLS
        assert (await _imap(imap.port, "tls")).kind is FailureKind.TLS
        # STARTTLS asked of servers that do not offer it.
        async with Peer(b"* OK [CAPABILITY IMAP4rev1] plain\r\n") as no_starttls:
            failure = await _imap(no_starttls.port, "starttls")
        assert failure.kind is FailureKind.TLS


async def test_well_formed_refusals_are_shown() -> None:
    async with Peer(b"554 5.7.1 no service here\r\n") as smtp, Peer(b"* BYE too busy\r\n") as imap:
        refused = await _smtp(smtp.port)
        bye = await _imap(imap.port)
    assert refused.kind is FailureKind.REJECTED
    assert refused.message.endswith("the server refused the connection: 554 5.7.1 no service here")
    assert bye.kind is FailureKind.REJECTED and bye.message.endswith(": BYE too busy")


async def test_a_name_resolving_into_a_denied_range_is_refused_before_connecting() -> None:
    deny_loopback = HostPolicy(deny=parse_networks("127.0.0.0/8, ::1/128"))
    async with Peer(b"220 ok\r\n") as peer:
        smtp = await _smtp(peer.port, host="localhost", policy=deny_loopback)
        imap = await _imap(peer.port, host="localhost", policy=deny_loopback)
        assert peer.connections == 0
    assert smtp.kind is FailureKind.DENIED and imap.kind is FailureKind.DENIED
    assert "PIGEON_MAILBOX_HOSTS_DENY" in smtp.message


async def test_loopback_only_allows_loopback_and_refuses_the_rest() -> None:
    loopback_only = HostPolicy(loopback_only=True)
    async with Peer(b"554 5.7.1 reached\r\n") as peer:
        assert (await _smtp(peer.port, policy=loopback_only)).kind is FailureKind.REJECTED
        # 0.0.0.0 is not a loopback address, yet a connect to it stays on this machine
        # (Linux delivers it locally): a policy that let it through would reach the peer
        # here, never another host.
        denied = await _smtp(peer.port, host="0.0.0.0", policy=loopback_only)  # noqa: S104 (a connect target)
        assert denied.kind is FailureKind.DENIED and "LOOPBACK_ONLY" in denied.message
        assert peer.connections == 1  # the first attempt only


# --- through the API ----------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def guarded_stack(
    module_nats: NatsServer, module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    settings = stack_settings(
        module_database,
        module_nats.url,
        tmp_path_factory.mktemp("data"),
        public_base_url="http://127.0.0.1:9",
        mailbox_hosts_deny="127.0.0.2/32",
    )
    running = Stack(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.close()


def _mailbox(smtp_port: int, imap_port: int, host: str = "127.0.0.1") -> dict[str, object]:
    def server(port: int) -> dict[str, object]:
        return {"host": host, "port": port, "security": "plain", "username": "u", "password": "p"}

    return {
        "name": "Probe",
        "from_name": "Probe",
        "from_address": "probe@example.com",
        "smtp": server(smtp_port),
        "imap": server(imap_port),
        "sent_folder": "",
        "bounce_folder": "Bounces",
        "append_to_sent": "never",
    }


async def _campaign(client: httpx.AsyncClient, mailbox_id: str) -> str:
    created = await client.post(
        "/api/v1/campaigns",
        json={"name": "c", "subject": "s", "template_markdown": "hi", "mailbox_id": mailbox_id},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_test_send_and_sync_say_the_kind_and_echo_nothing(guarded_stack: Stack) -> None:
    client = guarded_stack.client
    assert client is not None
    async with Peer(NATS_INFO) as nats_like, Peer(GARBAGE) as garbage:
        created = await client.post(
            "/api/v1/mailboxes", json=_mailbox(nats_like.port, garbage.port)
        )
        assert created.status_code == 201, created.text
        mailbox_id = created.json()["id"]
        campaign_id = await _campaign(client, mailbox_id)
        answer = await client.post(
            f"/api/v1/campaigns/{campaign_id}/test-send", json={"email": "me@example.org"}
        )
        error = assert_error_shape(answer, 502)
        assert error["code"] == "smtp_not_a_server"
        assert error["message"] == f"SMTP server 127.0.0.1:{nats_like.port}: not an SMTP server"
        assert not any(secret in answer.text for secret in SECRETS)

        sync = guarded_stack.start_imap_sync(imap_sync_interval=3600)
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                answer = await client.post(f"/api/v1/mailboxes/{mailbox_id}/sync")
                if answer.status_code != 503 or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.2)  # imap-sync still starting
        finally:
            await sync.stop()
        error = assert_error_shape(answer, 502)
        assert error["code"] == "imap_not_a_server", answer.text
        assert not any(secret in answer.text for secret in SECRETS)
        state = (await client.get(f"/api/v1/mailboxes/{mailbox_id}/sync")).json()
        assert not any(secret in str(state) for secret in SECRETS)


async def test_a_denied_address_is_refused_when_saved(guarded_stack: Stack) -> None:
    client = guarded_stack.client
    assert client is not None
    refused = await client.post("/api/v1/mailboxes", json=_mailbox(25, 143, host="127.0.0.2"))
    error = assert_error_shape(refused, 422)
    assert error["code"] == "mailbox_host_denied" and error["field"] == "smtp.host"
    created = await client.post("/api/v1/mailboxes", json=_mailbox(25, 143))
    assert created.status_code == 201, created.text
    patched = await client.patch(
        f"/api/v1/mailboxes/{created.json()['id']}", json={"imap": {"host": "127.0.0.2"}}
    )
    error = assert_error_shape(patched, 422)
    assert error["field"] == "imap.host" and "127.0.0.2/32" in error["message"]
