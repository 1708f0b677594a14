"""Benchmark: storing sent messages in an IMAP Sent folder with pigeon_sender.appender.

What is measured: the wall time of `ImapAppender.append_many(folder, messages)` for N messages
of about `--size` bytes (CRLF, 8-bit UTF-8 bodies) on one logged-in connection, twice:
  - multiappend: MULTIAPPEND (RFC 3502) with LITERAL+, one APPEND command per batch of
    `--batch-messages` messages (or `--batch-bytes`), batches one after the other;
  - single: one APPEND per message, a batch of them written back to back (pipelined) before
    their answers are read (the fallback for servers without MULTIAPPEND).
For context only (stderr), `--sequential` messages are appended one round trip each (fewer
messages into an empty folder, so not comparable: Dovecot's Maildir cost per APPEND command
grows with the folder's size, which is what batching into one command avoids).
Login and building the messages happen before the clock starts. After each run the folder's
message count is checked.

How: a throwaway Dovecot (`pigeon_testing.dovecot.DovecotServer`: Debian's dovecot-imapd,
Maildir, `mail_fsync = never`) on 127.0.0.1 in a temporary folder, stopped at the end, also
on error, Ctrl-C, SIGTERM or `--timeout`.

Progress goes to stderr; the last line on stdout is
`imap append: <n> msg/s multiappend, <m> msg/s single`.

    uv run python bench/imap_append.py --messages 5000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

import benchkit

from pigeon_sender.appender import ImapAppender, open_appender
from pigeon_testing.dovecot import SENT_FOLDER, DovecotServer, ImapAccount

log = logging.getLogger("bench.imap_append")

USER = "bench"
PASSWORD = "bench-secret"
SINGLE_FOLDER = "Bench single"
SEQUENTIAL_FOLDER = "Bench sequential"
FILLER = "Grüße aus Köln, naïve café ✓ pigeon campaign über alles — "


def make_messages(count: int, size: int) -> list[bytes]:
    """`count` distinct messages of about `size` bytes, CRLF line endings, 8-bit bodies."""
    messages = []
    for i in range(count):
        head = (
            "From: Pigeon <campaigns@pigeon.test>\r\n"
            f"To: <user{i}@example.test>\r\n"
            f"Subject: Bench message {i}\r\n"
            f"Message-ID: <bench-{i}@pigeon.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n"
            "\r\n"
            ".a line with a leading dot\r\n"
        ).encode()
        line = f"{i} {FILLER}\r\n".encode()
        body = line * max(1, (size - len(head)) // len(line))
        messages.append(head + body)
    return messages


def stored_count(dovecot: DovecotServer, folder: str) -> int:
    with dovecot.imap(USER) as client:
        typ, data = client.select(f'"{folder}"', readonly=True)
        if typ != "OK":
            raise RuntimeError(f"SELECT {folder!r} failed: {data!r}")
        return int(data[0] or 0)


async def timed_append(
    account: ImapAccount,
    folder: str,
    messages: list[bytes],
    *,
    use_multiappend: bool,
    batch_messages: int,
    batch_bytes: int,
    one_by_one: bool = False,
) -> float:
    """Seconds to append `messages` to `folder` on a fresh, logged-in connection."""
    imap: ImapAppender = await open_appender(
        account.host,
        account.port,
        "plain",
        account.username,
        account.password,
        use_multiappend=use_multiappend,
        batch_messages=batch_messages,
        batch_bytes=batch_bytes,
    )
    async with imap:
        assert imap.uses_multiappend == use_multiappend
        started = time.perf_counter()
        if one_by_one:
            for message in messages:
                await imap.append(folder, message)
        else:
            await imap.append_many(folder, messages)
        return time.perf_counter() - started


async def run(dovecot: DovecotServer, args: argparse.Namespace) -> tuple[float, float]:
    account = dovecot.account(USER)
    messages = make_messages(args.messages, args.size)
    total = sum(len(m) for m in messages)
    log.info("%d messages ready, %.1f MB", len(messages), total / 1e6)
    for folder in (SINGLE_FOLDER, SEQUENTIAL_FOLDER):
        dovecot.create_folder(USER, folder)

    rates = []
    for name, folder, multi in (
        ("multiappend", SENT_FOLDER, True),
        ("single", SINGLE_FOLDER, False),
    ):
        seconds = await timed_append(
            account,
            folder,
            messages,
            use_multiappend=multi,
            batch_messages=args.batch_messages,
            batch_bytes=args.batch_bytes,
        )
        count = await asyncio.to_thread(stored_count, dovecot, folder)
        if count != len(messages):
            raise RuntimeError(f"{folder!r} holds {count} messages, expected {len(messages)}")
        rate = len(messages) / seconds
        log.info("%s: %d messages in %.2f s = %.0f msg/s", name, len(messages), seconds, rate)
        rates.append(rate)

    if args.sequential:
        few = messages[: args.sequential]
        seconds = await timed_append(
            account,
            SEQUENTIAL_FOLDER,
            few,
            use_multiappend=False,
            batch_messages=1,
            batch_bytes=args.batch_bytes,
            one_by_one=True,
        )
        log.info(
            "sequential (one round trip each, context only; into an empty folder, and"
            " Dovecot's cost per APPEND grows with the folder): %d in %.2f s = %.0f msg/s",
            len(few),
            seconds,
            len(few) / seconds,
        )
    return rates[0], rates[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per run")
    parser.add_argument("--size", type=int, default=4096, help="approximate bytes per message")
    parser.add_argument("--batch-messages", type=int, default=100, help="messages per batch")
    parser.add_argument(
        "--batch-bytes", type=int, default=4 * 1024 * 1024, help="bytes per batch at most"
    )
    parser.add_argument(
        "--sequential",
        type=int,
        default=500,
        help="messages appended one round trip each, for context (0: skip)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up after this many seconds"
    )
    args = parser.parse_args(argv)
    if args.messages < 1 or args.size < 1 or args.batch_messages < 1 or args.batch_bytes < 1:
        parser.error("--messages, --size and the batch limits must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchkit.configure()
    dovecot = DovecotServer()
    try:
        dovecot.add_user(USER, PASSWORD)
        dovecot.start()
        log.info("dovecot pid %s at %s:%d", dovecot.pid, dovecot.host, dovecot.port)
        multi, single = asyncio.run(asyncio.wait_for(run(dovecot, args), args.timeout))
    finally:
        dovecot.stop()
        log.info("dovecot stopped")
    print(f"imap append: {multi:.0f} msg/s multiappend, {single:.0f} msg/s single", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
