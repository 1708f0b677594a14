"""The SMTP session the sender and the test send use, against the real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pigeon_common.smtp import SmtpConnectError, SmtpEndpoint, SmtpSession
from pigeon_common.smtp_outcomes import Verdict
from pigeon_sender.settings import SenderSettings
from pigeon_testing.smtp import SmtpTestServer

RAW = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def smtps() -> Iterator[SmtpTestServer]:
    with SmtpTestServer(implicit_tls=True, auth_required=True) as server:
        yield server


def _endpoint(server: SmtpTestServer, security: str, **extra: object) -> SmtpEndpoint:
    settings = SenderSettings(tls_ca_file=server.cert_path, secret_key="s" * 40)
    values: dict[str, object] = {
        "host": "localhost",
        "port": server.port,
        "security": security,
        "username": server.username,
        "password": server.password,
        "tls_context": settings.tls_context(),
    }
    values.update(extra)
    return SmtpEndpoint(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("security", ["plain", "starttls"])
async def test_one_connection_for_many_messages(smtp: SmtpTestServer, security: str) -> None:
    session = SmtpSession(_endpoint(smtp, security))
    try:
        for i in range(3):
            outcome = await session.send("a@example.com", f"r{i}@example.com", RAW)
            assert outcome.verdict is Verdict.SENT and outcome.reply.startswith("250")
    finally:
        await session.close()
    assert len({m.connection_id for m in smtp.messages}) == 1
    assert all(m.tls is (security == "starttls") for m in smtp.messages)


async def test_implicit_tls_with_a_private_ca(smtps: SmtpTestServer) -> None:
    smtps.clear()
    session = SmtpSession(_endpoint(smtps, "tls"))
    try:
        outcome = await session.send("a@example.com", "b@example.com", RAW)
    finally:
        await session.close()
    assert outcome.verdict is Verdict.SENT
    assert smtps.messages[0].tls and smtps.messages[0].auth_user == smtps.username


async def test_untrusted_certificate_is_refused(smtps: SmtpTestServer) -> None:
    endpoint = _endpoint(smtps, "tls", tls_context=None)
    with pytest.raises(SmtpConnectError) as failure:
        await SmtpSession(endpoint).connect()
    assert "certificate" in failure.value.outcome.reply.lower()


async def test_wrong_password_is_an_authentication_failure(smtp: SmtpTestServer) -> None:
    with pytest.raises(SmtpConnectError) as failure:
        await SmtpSession(_endpoint(smtp, "plain", password="wrong")).connect()
    assert failure.value.outcome.verdict is Verdict.AUTH


async def test_replies_by_phase(smtp: SmtpTestServer) -> None:
    session = SmtpSession(_endpoint(smtp, "plain"))
    try:
        smtp.fail("rcpt", 451, "4.3.0 later")
        assert (await session.send("a@example.com", "b@example.com", RAW)).verdict is Verdict.RETRY
        smtp.fail("data", 554, "5.7.1 spam")
        failed = await session.send("a@example.com", "b@example.com", RAW)
        assert (failed.verdict, failed.code) == (Verdict.FAILED, 554)
        smtp.disconnect_during_data()
        lost = await session.send("a@example.com", "b@example.com", RAW)
        assert lost.verdict is Verdict.UNKNOWN
        # The session reconnects by itself after a lost connection.
        assert (await session.send("a@example.com", "c@example.com", RAW)).verdict is Verdict.SENT
    finally:
        await session.close()
    assert [list(m.rcpt_tos) for m in smtp.messages] == [["c@example.com"]]


@pytest.fixture(scope="module")
def pipelining() -> Iterator[SmtpTestServer]:
    with SmtpTestServer(pipelining=True) as server:
        yield server


@pytest.mark.parametrize("pipelined", [True, False])
async def test_refusals_leave_the_session_usable(
    smtp: SmtpTestServer, pipelining: SmtpTestServer, pipelined: bool
) -> None:
    server = pipelining if pipelined else smtp
    server.clear()
    session = SmtpSession(_endpoint(server, "plain"))
    try:
        server.fail("mail", 451, "4.3.0 busy")
        assert (await session.send("a@example.com", "b@example.com", RAW)).verdict is Verdict.RETRY
        server.fail("rcpt", 550, "5.1.1 no such user")
        refused = await session.send("a@example.com", "b@example.com", RAW)
        assert (refused.verdict, refused.hard_bounce) == (Verdict.FAILED, True)
        dotted = RAW + b".leading dot\r\n..two dots\r\n"
        assert (
            await session.send("a@example.com", "d@example.com", dotted)
        ).verdict is Verdict.SENT
    finally:
        await session.close()
    assert [list(m.rcpt_tos) for m in server.messages] == [["d@example.com"]]
    assert server.messages[0].data.endswith(b".leading dot\r\n..two dots\r\n")
