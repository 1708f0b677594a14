"""Reading the Message-IDs out of FETCHed header blocks (pigeon_sender.appender)."""

from __future__ import annotations

from pigeon_sender.appender import header_message_ids


def test_each_block_gives_its_message_id() -> None:
    blocks = [
        b"Message-ID: <a.b.c@pigeon.test>\r\n\r\n",
        b"Message-Id: <d@pigeon.test>\r\n\r\n",
    ]
    assert header_message_ids(blocks) == {"<a.b.c@pigeon.test>", "<d@pigeon.test>"}


def test_a_folded_value_is_unfolded() -> None:
    assert header_message_ids([b"Message-ID:\r\n <long.id@pigeon.test>\r\n\r\n"]) == {
        "<long.id@pigeon.test>"
    }


def test_a_block_without_the_field_gives_nothing() -> None:
    assert header_message_ids([b"\r\n", b"", b"Subject: hi\r\n\r\n"]) == set()
