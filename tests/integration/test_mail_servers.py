"""The test mail servers themselves: aiosmtplib against SmtpTestServer, aioimaplib against Dovecot.

These prove the harness the rest of the suite relies on: what a real client sees when the
SMTP server is told to fail, drop or stall, and that Dovecot's Sent folder is found by its
RFC 6154 special-use flag.
"""

from __future__ import annotations

import asyncio
import re

import aioimaplib
import aiosmtplib
import pytest

from pigeon_testing.dovecot import BOUNCES_FOLDER, DovecotServer, ImapAccount
from pigeon_testing.smtp import DEFAULT_PASSWORD, DEFAULT_USERNAME, SmtpTestServer

SENDER = "campaigns@pigeon.test"
ALICE = "alice@example.test"
BOB = "bob@example.test"
SENT_FLAG = "\\Sent"
IMAP_TIMEOUT = 10
# One LIST reply line: (flags) "separator" name
LIST_LINE = re.compile(r'^\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')


def raw_message(subject: str = "Hello", to: str = ALICE) -> bytes:
    return (
        f"From: Pigeon <{SENDER}>\r\n"
        f"To: <{to}>\r\n"
        f"Subject: {subject}\r\n"
        "Message-ID: <test-1@pigeon.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Hello there.\r\n"
        ".leading dot survives dot-stuffing\r\n"
    ).encode()


def plain_client(server: SmtpTestServer, timeout: float = 5.0) -> aiosmtplib.SMTP:
    """A client that stays in plaintext (aiosmtplib would upgrade on its own otherwise)."""
    return aiosmtplib.SMTP(hostname=server.host, port=server.port, start_tls=False, timeout=timeout)


# --- SMTP ----------------------------------------------------------------------------------


async def test_auth_over_plain_connection_is_recorded(smtp: SmtpTestServer) -> None:
    raw = raw_message()
    async with plain_client(smtp) as client:
        await client.login(DEFAULT_USERNAME, DEFAULT_PASSWORD)
        errors, _ = await client.sendmail(SENDER, [ALICE], raw)

    assert errors == {}
    [message] = smtp.messages
    assert message.mail_from == SENDER
    assert message.rcpt_tos == (ALICE,)
    assert message.data == raw
    assert message.auth_user == DEFAULT_USERNAME
    assert message.tls is False


async def test_auth_over_starttls_is_recorded_as_tls(smtp: SmtpTestServer) -> None:
    async with aiosmtplib.SMTP(
        hostname=smtp.host, port=smtp.port, start_tls=True, tls_context=smtp.tls_context
    ) as client:
        await client.login(DEFAULT_USERNAME, DEFAULT_PASSWORD)
        await client.sendmail(SENDER, [ALICE], raw_message())

    [message] = smtp.messages
    assert message.tls is True
    assert message.auth_user == DEFAULT_USERNAME


async def test_wrong_password_is_refused(smtp: SmtpTestServer) -> None:
    async with plain_client(smtp) as client:
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
            await client.login(DEFAULT_USERNAME, "not-the-password")
    assert refused.value.code == 535


async def test_temporary_failure_at_mail_hits_only_the_next_transaction(
    smtp: SmtpTestServer,
) -> None:
    smtp.fail("mail", 451, "4.3.2 Try again later")
    async with plain_client(smtp) as client:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.sendmail(SENDER, [ALICE], raw_message())
        assert refused.value.code == 451
        assert "Try again later" in refused.value.message
        await client.rset()
        await client.sendmail(SENDER, [ALICE], raw_message())

    assert smtp.recipients() == [ALICE]


async def test_permanent_failure_for_one_recipient_only(smtp: SmtpTestServer) -> None:
    smtp.fail("rcpt", 550, "5.1.1 No such user", times=None, recipients=[BOB])
    async with plain_client(smtp) as client:
        errors, _ = await client.sendmail(SENDER, [ALICE, BOB], raw_message())
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await client.sendmail(SENDER, [BOB], raw_message())

    assert errors[BOB].code == 550
    assert smtp.recipients() == [ALICE]


async def test_failure_at_data_records_nothing(smtp: SmtpTestServer) -> None:
    smtp.fail("data", 452)
    async with plain_client(smtp) as client:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail(SENDER, [ALICE], raw_message())
    assert refused.value.code == 452
    assert smtp.messages == []


async def test_disconnect_during_data_records_nothing(smtp: SmtpTestServer) -> None:
    smtp.disconnect_during_data()
    async with plain_client(smtp) as client:
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await client.sendmail(SENDER, [ALICE], raw_message())
    assert smtp.messages == []

    async with plain_client(smtp) as client:  # the fault was for one transaction only
        await client.sendmail(SENDER, [ALICE], raw_message())
    assert smtp.recipients() == [ALICE]


async def test_stall_makes_the_client_time_out(smtp: SmtpTestServer) -> None:
    smtp.stall("data", 1.0)
    client = plain_client(smtp, timeout=0.3)
    await client.connect()
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await client.sendmail(SENDER, [ALICE], raw_message())
    client.close()

    await asyncio.sleep(1.3)  # past the stall: the server found the client gone
    assert smtp.messages == []


async def test_recipients_keeps_duplicates_and_wait_for(smtp: SmtpTestServer) -> None:
    async with plain_client(smtp) as client:
        for subject in ("first", "second"):
            await client.sendmail(SENDER, [ALICE], raw_message(subject))

    messages = await asyncio.wait_for(smtp.wait_for_async(2), 5)
    assert smtp.recipients() == [ALICE, ALICE]
    assert len({m.connection_id for m in messages}) == 1
    smtp.clear()
    assert smtp.recipients() == []


async def test_implicit_tls_server_with_required_auth() -> None:
    with SmtpTestServer(implicit_tls=True, auth_required=True) as server:
        async with aiosmtplib.SMTP(
            hostname=server.host, port=server.port, use_tls=True, tls_context=server.tls_context
        ) as client:
            with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
                await client.sendmail(SENDER, [ALICE], raw_message())
            assert refused.value.code == 530
            await client.login(DEFAULT_USERNAME, DEFAULT_PASSWORD)
            await client.sendmail(SENDER, [ALICE], raw_message())

        [message] = server.wait_for(1)
        assert message.tls is True
        assert message.auth_user == DEFAULT_USERNAME


# --- IMAP ----------------------------------------------------------------------------------


async def imap_login(account: ImapAccount) -> aioimaplib.IMAP4:
    imap = aioimaplib.IMAP4(host=account.host, port=account.port, timeout=IMAP_TIMEOUT)
    await imap.wait_hello_from_server()
    response = await imap.login(account.username, account.password)
    assert response.result == "OK", response.lines
    return imap


async def find_special_use(imap: aioimaplib.IMAP4, flag: str) -> str:
    """The name of the folder LIST marks with the RFC 6154 `flag`."""
    response = await imap.list('""', "*")
    assert response.result == "OK", response.lines
    for line in response.lines:
        match = LIST_LINE.match(line.decode() if isinstance(line, bytes) else line)
        if match and flag in match["flags"].split():
            return match["name"].strip('"')
    raise AssertionError(f"no folder with {flag} in {response.lines!r}")


async def test_append_to_sent_found_by_special_use(
    dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    raw = raw_message("Sent copy")
    imap = await imap_login(imap_user)
    try:
        sent = await find_special_use(imap, SENT_FLAG)
        response = await imap.append(raw, mailbox=sent, flags="\\Seen")
        assert response.result == "OK", response.lines
    finally:
        await imap.logout()

    assert dovecot.fetch_all(imap_user.username, sent) == [raw]


async def test_capabilities_after_login(dovecot: DovecotServer) -> None:
    imap = await imap_login(dovecot.account("test"))
    try:
        await imap.protocol.capability()  # after login Dovecot lists everything it offers
        for capability in ("IDLE", "LITERAL+", "MULTIAPPEND", "SPECIAL-USE", "UIDPLUS"):
            assert imap.has_capability(capability), capability
    finally:
        await imap.logout()


async def test_deliver_puts_a_bounce_into_its_folder(
    dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    bounce = (
        b"From: MAILER-DAEMON@example.test\r\n"
        b"To: campaigns@pigeon.test\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b"\r\n"
        b"550 5.1.1 <bob@example.test>: no such user\r\n"
    )
    dovecot.deliver(imap_user.username, BOUNCES_FOLDER, bounce)
    dovecot.deliver(imap_user.username, "Bounces/Archive", bounce)

    assert dovecot.fetch_all(imap_user.username, BOUNCES_FOLDER) == [bounce]
    assert dovecot.fetch_all(imap_user.username, "Bounces/Archive") == [bounce]
    assert dovecot.fetch_all(imap_user.username, "INBOX") == []

    imap = await imap_login(imap_user)
    try:
        response = await imap.select(BOUNCES_FOLDER)
        assert response.result == "OK", response.lines
        assert b"1 EXISTS" in response.lines
    finally:
        await imap.logout()
