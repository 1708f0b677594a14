"""The shared IMAP client (pigeon_common.imap_client) and the sender's Sent-folder appender
(pigeon_sender.appender) against the real Dovecot of the harness.

What is checked is what Dovecot stored (`DovecotServer.fetch_all`), byte for byte, and what
the client raises when the server refuses, hangs up or stays silent.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import random
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pigeon_common.events import Security
from pigeon_common.imap_client import open_imap
from pigeon_common.imap_protocol import (
    ImapAuthError,
    ImapConnectionError,
    ImapError,
    ImapTimeoutError,
)
from pigeon_embedded.ports import LOOPBACK, free_port
from pigeon_sender.appender import ImapAppender, ImapAppendError, open_appender
from pigeon_testing.dovecot import SENT_FOLDER, DovecotServer, ImapAccount

TIMEOUT = 10.0
WORDS = ("pigeon", "campaign", "Grüße", "naïve", "Köln", "✓", "🐦", "token", "über", "—", "café")


def make_messages(count: int, size: int = 4096, seed: int = 7) -> list[bytes]:
    """`count` RFC 5322 messages of about `size` bytes with CRLF line endings and bodies that
    stress a transport: 8-bit UTF-8, lines that start with dots or "From ", a lone ".",
    a 2,000-character line, a line of spaces."""
    rng = random.Random(seed)
    messages = []
    for i in range(count):
        lines = [
            "From: Pigeon <campaigns@pigeon.test>",
            f"To: <user{i}@example.test>",
            f"Subject: Grüße #{i}",
            f"Message-ID: <{i}.{rng.getrandbits(48):x}@pigeon.test>",
            "Date: Mon, 23 Nov 2026 10:00:00 +0000",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "",
            f"Hallo Empfänger {i}, ünïcödé ✓ 🐦",
            ".leading dot",
            "..two dots",
            ".",
            "From the start of a line",
            ">From quoted",
            "x" * 2000 if i % 5 == 0 else "short",
            " " * (i % 7),
        ]
        body = "\r\n".join(lines) + "\r\n"
        while len(body.encode()) < size:
            body += " ".join(rng.choice(WORDS) for _ in range(12)) + "\r\n"
        messages.append(body.encode())
    return messages


async def connect(account: ImapAccount, **options: Any) -> ImapAppender:
    return await open_appender(
        account.host,
        account.port,
        "plain",
        account.username,
        account.password,
        timeout=TIMEOUT,
        **options,
    )


@pytest.fixture
async def imap(imap_user: ImapAccount) -> AsyncIterator[ImapAppender]:
    appender = await connect(imap_user)
    try:
        yield appender
    finally:
        await appender.close()


def kick(dovecot: DovecotServer, user: str) -> None:
    """Make Dovecot drop every connection of `user` (it says BYE, then closes)."""
    subprocess.run(
        ["doveadm", "-c", str(dovecot.config_path), "kick", user],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )


# --- logging in, folders -----------------------------------------------------------------


async def test_login_learns_capabilities(imap: ImapAppender) -> None:
    assert {"MULTIAPPEND", "LITERAL+", "SPECIAL-USE", "UIDPLUS"} <= imap.capabilities
    assert imap.uses_multiappend


@pytest.mark.parametrize("password", ['q"uo\\te and space', "pässwört ✓"])
async def test_odd_passwords_log_in(dovecot: DovecotServer, password: str) -> None:
    account = dovecot.add_user(f"odd-{random.getrandbits(32):x}", password)
    async with await connect(account) as imap:
        assert await imap.find_sent_folder() == SENT_FOLDER


async def test_find_sent_folder_by_special_use(imap: ImapAppender) -> None:
    assert await imap.find_sent_folder() == SENT_FOLDER
    special = await imap.list_mailboxes(special_use_only=True)
    assert {m.raw_name for m in special} == {"Sent", "Drafts", "Trash", "Junk"}


async def test_modified_utf7_folder_is_listed_decoded_and_appended_by_either_name(
    dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    raw = "Entw&APw-rfe &- Archiv"
    dovecot.create_folder(imap_user.username, raw)
    messages = make_messages(4)
    async with await connect(imap_user) as imap:
        [listed] = [m for m in await imap.list_mailboxes() if m.raw_name == raw]
        assert listed.name == "Entwürfe & Archiv"
        await imap.append_many(listed.name, messages[:2])  # display name: encoded
        await imap.append_many(listed.raw_name, messages[2:])  # raw name: as is
    assert dovecot.fetch_all(imap_user.username, raw) == messages


# --- appending ---------------------------------------------------------------------------


async def test_multiappend_stores_exact_bytes_in_order(
    dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    messages = make_messages(500)
    async with await connect(imap_user, batch_messages=100) as imap:
        assert imap.uses_multiappend
        await imap.append_many(SENT_FOLDER, messages)
    assert dovecot.fetch_all(imap_user.username, SENT_FOLDER) == messages


async def test_batches_split_by_bytes(dovecot: DovecotServer, imap_user: ImapAccount) -> None:
    messages = make_messages(30, size=3000)
    async with await connect(imap_user, batch_bytes=10_000) as imap:
        await imap.append_many(SENT_FOLDER, messages)
    assert dovecot.fetch_all(imap_user.username, SENT_FOLDER) == messages


async def test_multiappend_with_synchronizing_literals(
    dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    messages = make_messages(60)
    async with await connect(imap_user, use_literal_plus=False, batch_messages=25) as imap:
        await imap.append_many(SENT_FOLDER, messages)
    assert dovecot.fetch_all(imap_user.username, SENT_FOLDER) == messages


@pytest.mark.parametrize("literal_plus", [True, False], ids=["literal+", "sync"])
async def test_single_append_fallback_pipelines(
    dovecot: DovecotServer, imap_user: ImapAccount, literal_plus: bool
) -> None:
    messages = make_messages(250)
    async with await connect(
        imap_user, use_multiappend=False, use_literal_plus=literal_plus
    ) as imap:
        assert not imap.uses_multiappend
        await imap.append_many(SENT_FOLDER, messages)
        await imap.append(SENT_FOLDER, messages[0])
    assert dovecot.fetch_all(imap_user.username, SENT_FOLDER) == [*messages, messages[0]]


async def test_flags_are_set(dovecot: DovecotServer, imap_user: ImapAccount) -> None:
    async with await connect(imap_user) as imap:
        await imap.append_many(SENT_FOLDER, make_messages(2), flags=("\\Seen", "$Pigeon"))
        await imap.append(SENT_FOLDER, make_messages(1)[0], flags=())
    with dovecot.imap(imap_user.username) as client:
        client.select(SENT_FOLDER, readonly=True)
        _, data = client.fetch("1:3", "(FLAGS)")
    flags = [line.decode() for line in data if isinstance(line, bytes)]
    assert "\\Seen" in flags[0] and "$Pigeon" in flags[1]
    assert "\\Seen" not in flags[2]


@pytest.mark.parametrize("multiappend", [True, False], ids=["multiappend", "single"])
async def test_refused_append_says_what_is_not_stored(
    dovecot: DovecotServer, imap_user: ImapAccount, multiappend: bool
) -> None:
    messages = make_messages(12)
    async with await connect(imap_user, use_multiappend=multiappend, batch_messages=5) as imap:
        with pytest.raises(ImapAppendError) as caught:
            await imap.append_many("No Such Folder", messages)
        assert caught.value.code == "TRYCREATE"
        assert not caught.value.temporary
        # the first batch is refused, the later two are never tried
        assert caught.value.failed == tuple(range(12))
        await imap.append_many(SENT_FOLDER, messages[:1])  # the connection is still good
    assert dovecot.fetch_all(imap_user.username, SENT_FOLDER) == messages[:1]


async def test_contains_message_id(imap: ImapAppender) -> None:
    messages = make_messages(3)
    await imap.append_many(SENT_FOLDER, messages)
    message_id = messages[1].split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
    assert await imap.contains_message_id(SENT_FOLDER, message_id)
    assert not await imap.contains_message_id(SENT_FOLDER, "<never-sent@pigeon.test>")
    assert not await imap.contains_message_id("Drafts", message_id)
    with pytest.raises(ValueError, match="Message-ID"):
        await imap.contains_message_id(SENT_FOLDER, "<a>\r\nX: y")
    await imap.append(SENT_FOLDER, messages[0])  # still usable after EXAMINE/UNSELECT


# --- failures of the connection ------------------------------------------------------------


async def test_kicked_connection_raises_connection_error(
    dovecot: DovecotServer, imap: ImapAppender, imap_user: ImapAccount
) -> None:
    await asyncio.to_thread(kick, dovecot, imap_user.username)
    started = time.monotonic()
    with pytest.raises(ImapConnectionError, match="BYE") as caught:
        await imap.append(SENT_FOLDER, make_messages(1)[0])
    assert time.monotonic() - started < TIMEOUT / 2  # noticed, not timed out
    assert caught.value.unconfirmed == (0,)
    assert imap.closed
    with pytest.raises(ImapConnectionError, match="closed"):
        await imap.find_sent_folder()
    await imap.close()  # tolerated


async def test_kick_during_append_many(dovecot: DovecotServer, imap_user: ImapAccount) -> None:
    messages = make_messages(6000)
    imap = await connect(imap_user, batch_messages=50)
    task = asyncio.create_task(imap.append_many(SENT_FOLDER, messages))

    def stored() -> int:
        with dovecot.imap(imap_user.username) as client:
            _, data = client.select(SENT_FOLDER, readonly=True)
            return int(data[0] or 0)

    while await asyncio.to_thread(stored) == 0:
        assert not task.done()
        await asyncio.sleep(0.01)
    await asyncio.to_thread(kick, dovecot, imap_user.username)
    with pytest.raises(ImapConnectionError) as caught:
        await task
    await imap.close()

    unconfirmed = caught.value.unconfirmed
    assert unconfirmed == tuple(range(unconfirmed[0], len(messages)))
    confirmed = unconfirmed[0]
    assert 0 < confirmed < len(messages) and confirmed % 50 == 0
    kept = dovecot.fetch_all(imap_user.username, SENT_FOLDER)
    # everything confirmed is stored; of the batch in flight all or nothing
    assert kept[:confirmed] == messages[:confirmed]
    assert len(kept) in (confirmed, confirmed + 50)
    assert kept == messages[: len(kept)]


async def test_silent_server_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # says nothing until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ImapTimeoutError, match="no answer"):
            await open_imap("127.0.0.1", port, "plain", "u", "p", timeout=0.5)
        assert time.monotonic() - started < 3


async def test_server_that_stalls_after_login_times_out() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND] hi\r\n")
        line = await reader.readline()
        tag = line.split(b" ")[0]
        writer.write(tag + b" OK [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND] logged in\r\n")
        await reader.read()  # then reads commands and never answers
        writer.close()

    server = await asyncio.start_server(stalls, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        imap = await open_appender("127.0.0.1", port, "plain", "u", "p", timeout=0.5)
        assert imap.uses_multiappend
        with pytest.raises(ImapTimeoutError) as caught:
            await imap.append_many("Sent", make_messages(3))
        assert caught.value.unconfirmed == (0, 1, 2)
        await imap.close()


async def test_server_that_hangs_up_after_greeting() -> None:
    async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1] hi\r\n")
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(hangs_up, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ImapConnectionError, match="closed by the server"):
            await open_imap("127.0.0.1", port, "plain", "u", "p", timeout=TIMEOUT)


async def test_garbage_from_server_is_a_connection_error() -> None:
    async def babbles(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 smtp.example.test ESMTP\r\n")
        await reader.read()
        writer.close()

    server = await asyncio.start_server(babbles, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ImapConnectionError):
            await open_imap("127.0.0.1", port, "plain", "u", "p", timeout=TIMEOUT)


async def test_nothing_listening_is_a_connection_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(ImapConnectionError, match="cannot connect"):
        await open_imap("127.0.0.1", port, "plain", "u", "p", timeout=TIMEOUT)


# --- TLS ------------------------------------------------------------------------------------


def write_self_signed(cert_path: Path, key_path: Path) -> None:
    """A certificate for 127.0.0.1 that is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class TlsDovecot(DovecotServer):
    """The harness's Dovecot with a self-signed certificate: STARTTLS on `port`, implicit
    TLS on `tls_port`."""

    tls_port = 0

    @property
    def cert_path(self) -> Path:
        return self.root / "cert.pem"

    def _write_config(self) -> None:
        super()._write_config()
        key_path = self.root / "key.pem"
        write_self_signed(self.cert_path, key_path)
        self.tls_port = free_port(self.host)
        text = self.config_path.read_text(encoding="utf-8")
        edits = {
            "ssl = no": f"ssl = yes\nssl_cert = <{self.cert_path}\nssl_key = <{key_path}",
            "inet_listener imaps {\n    port = 0": (
                f"inet_listener imaps {{\n    address = {self.host}\n    port = {self.tls_port}"
            ),
        }
        for old, new in edits.items():
            assert old in text, f"the harness's dovecot.conf changed: no {old!r}"
            text = text.replace(old, new)
        self.config_path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def tls_dovecot() -> Iterator[TlsDovecot]:
    server = TlsDovecot()
    try:
        server.add_user("tls", "tls-secret")
        server.start()
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls(tls_dovecot: TlsDovecot, security: Security) -> None:
    account = tls_dovecot.account("tls")
    port = account.port if security == "starttls" else tls_dovecot.tls_port
    trusted = ssl.create_default_context(cafile=str(tls_dovecot.cert_path))
    async with await open_appender(
        account.host,
        port,
        security,
        account.username,
        account.password,
        ssl_context=trusted,
        timeout=TIMEOUT,
    ) as imap:
        assert "STARTTLS" not in imap.capabilities  # learnt again after the handshake
        assert await imap.find_sent_folder() == SENT_FOLDER
        await imap.append_many(SENT_FOLDER, make_messages(3, seed=len(security)))
    assert tls_dovecot.fetch_all("tls", SENT_FOLDER)[-3:] == make_messages(3, seed=len(security))


async def test_untrusted_certificate_is_a_connection_error(tls_dovecot: TlsDovecot) -> None:
    account = tls_dovecot.account("tls")
    with pytest.raises(ImapConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await open_imap(
            account.host,
            account.port,
            "starttls",
            account.username,
            account.password,
            timeout=TIMEOUT,
        )


# Last: Dovecot delays the next logins from an address that failed one (auth penalty).
async def test_wrong_password_raises_auth_error(imap_user: ImapAccount) -> None:
    with pytest.raises(ImapAuthError) as caught:
        await open_imap(
            imap_user.host, imap_user.port, "plain", imap_user.username, "wrong", timeout=TIMEOUT
        )
    assert caught.value.code == "AUTHENTICATIONFAILED"
    assert caught.value.command == "LOGIN"
    assert not isinstance(caught.value, ImapConnectionError)


async def test_message_ids_of_names_what_the_uids_hold(imap: ImapAppender) -> None:
    messages = make_messages(3)
    await imap.append_many(SENT_FOLDER, messages)
    ids = {m.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode() for m in messages}
    uids = await imap.uids_with_message_ids(SENT_FOLDER, sorted(ids))
    assert await imap.message_ids_of(SENT_FOLDER, sorted(uids)) == ids
    assert await imap.message_ids_of(SENT_FOLDER, [min(uids)]) < ids
    assert await imap.message_ids_of(SENT_FOLDER, []) == set()


async def test_uid_position_is_where_the_next_append_lands(imap: ImapAppender) -> None:
    validity, before = await imap.uid_position(SENT_FOLDER)
    await imap.append_many(SENT_FOLDER, make_messages(2))
    again, after = await imap.uid_position(SENT_FOLDER)
    assert (again, after) == (validity, before + 2)
    assert validity > 0
    with pytest.raises(ImapError):
        await imap.uid_position("No such folder")


async def test_uids_with_message_ids_asks_once_for_many(imap: ImapAppender) -> None:
    messages = make_messages(4)
    await imap.append_many(SENT_FOLDER, messages[:3])
    ids = [m.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode() for m in messages]
    found = await imap.uids_with_message_ids(SENT_FOLDER, ids)
    assert len(found) == 3
    assert await imap.uids_with_message_ids(SENT_FOLDER, ids[3:]) == set()
    [first] = await imap.uids_with_message_ids(SENT_FOLDER, [ids[0], "<never@pigeon.test>"])
    assert first == min(found)
    assert await imap.uids_with_message_ids(SENT_FOLDER, [ids[0]], (first + 1, max(found))) == set()
    assert await imap.uids_with_message_ids(SENT_FOLDER, [ids[1]], (first + 1, max(found)))
    assert await imap.uids_with_message_ids(SENT_FOLDER, [ids[2]], (max(found), None))
    assert not await imap.uids_with_message_ids(SENT_FOLDER, [ids[0]], (first + 1, None))
    assert await imap.uids_with_message_ids(SENT_FOLDER, []) == set()
    with pytest.raises(ValueError, match="Message-ID"):
        await imap.uids_with_message_ids(SENT_FOLDER, ["<a>\r\nX: y"])
