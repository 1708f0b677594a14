"""Reading a folder by UID over a real IMAP server (Dovecot): SELECT with UIDVALIDITY,
UIDs past a position, whole messages (a huge one left on the server), MOVE and IDLE."""

from __future__ import annotations

import asyncio

from pigeon_imap_sync.folder_reader import ImapFolderReader, open_folder_reader
from pigeon_testing.dovecot import DovecotServer, ImapAccount

FOLDER = "Reading"


def mail(n: int, size: int = 0) -> bytes:
    body = "x" * size
    return f"From: a@example.org\r\nSubject: {n}\r\n\r\nbody {n} {body}\r\n".encode()


async def reader_for(account: ImapAccount) -> ImapFolderReader:
    return await open_folder_reader(
        account.host, account.port, "plain", account.username, account.password, timeout=10
    )


async def test_uids_past_a_position_and_exact_bytes(
    dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    for n in range(3):
        dovecot.deliver(imap_user.username, FOLDER, mail(n))
    dovecot.deliver(imap_user.username, FOLDER, mail(3, size=50_000))
    async with await reader_for(imap_user) as imap:
        state = await imap.select(FOLDER)
        assert state.uidvalidity > 0 and state.exists == 4
        uids = await imap.uids_after(0)
        assert len(uids) == 4 and uids == sorted(uids)
        assert await imap.uids_after(uids[1]) == uids[2:]
        assert await imap.uids_after(uids[-1]) == []  # `n:*` still matches the last: filtered
        fetched = await imap.fetch(uids, max_bytes=10_000)
        assert [m.raw for m in fetched[:3]] == [mail(n) for n in range(3)]
        assert fetched[3].raw is None and fetched[3].size > 50_000


async def test_move_creates_the_folder_and_leaves_nothing_behind(
    dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    dovecot.deliver(imap_user.username, "Moving", mail(1))
    async with await reader_for(imap_user) as imap:
        await imap.select("Moving")
        await imap.move(await imap.uids_after(0), "Moved/Done")
    assert dovecot.fetch_all(imap_user.username, "Moving") == []
    assert dovecot.fetch_all(imap_user.username, "Moved/Done") == [mail(1)]


async def test_idle_wakes_on_new_mail_and_times_out_without(
    dovecot: DovecotServer, imap_user: ImapAccount
) -> None:
    dovecot.create_folder(imap_user.username, "Idle")
    async with await reader_for(imap_user) as imap:
        assert imap.can_idle
        await imap.select("Idle")
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await imap.idle(0.5) is False
        assert loop.time() - started >= 0.45

        async def deliver_later() -> None:
            await asyncio.sleep(0.3)
            await asyncio.to_thread(dovecot.deliver, imap_user.username, "Idle", mail(9))

        task = asyncio.create_task(deliver_later())
        started = loop.time()
        assert await imap.idle(20) is True
        assert loop.time() - started < 10
        await task
        # The connection is usable after IDLE.
        assert len(await imap.uids_after(0)) == 1


async def test_a_new_uidvalidity_is_seen(dovecot: DovecotServer, imap_user: ImapAccount) -> None:
    dovecot.deliver(imap_user.username, "Recreated", mail(1))
    async with await reader_for(imap_user) as imap:
        before = (await imap.select("Recreated")).uidvalidity
    with dovecot.imap(imap_user.username) as client:
        client.delete("Recreated")
        client.create("Recreated")
    dovecot.deliver(imap_user.username, "Recreated", mail(2))
    async with await reader_for(imap_user) as imap:
        assert (await imap.select("Recreated")).uidvalidity != before
