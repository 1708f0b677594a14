"""The UID floor kept with a copy's bytes, and where a takeover's search starts."""

from __future__ import annotations

from pigeon_sender.uid_floor import WHOLE_FOLDER, KeptCopy, UidFloor, pack, search_from, unpack

RAW = b"From: a@example.test\r\nMessage-ID: <x@pigeon.test>\r\n\r\n0 0\nbody\r\n"


def test_the_bytes_come_back_exactly_with_their_floor() -> None:
    floor = UidFloor(1700000000, 4242)
    assert unpack(pack(RAW, floor)) == KeptCopy(RAW, floor)
    assert unpack(pack(b"", floor)) == KeptCopy(b"", floor)


def test_an_unknown_floor_stays_unknown() -> None:
    assert unpack(pack(RAW, None)) == KeptCopy(RAW, None)


def test_bytes_kept_before_floors_are_all_message() -> None:
    assert unpack(RAW) == KeptCopy(RAW, None)
    assert unpack(b"PGNCOPY1 not numbers\n" + RAW) == KeptCopy(
        b"PGNCOPY1 not numbers\n" + RAW, None
    )


def test_the_search_starts_at_the_lowest_floor() -> None:
    floors = [UidFloor(7, 300), UidFloor(7, 120), UidFloor(7, 900)]
    assert search_from(floors, 7) == 120


def test_an_unknown_or_stale_floor_means_the_whole_folder() -> None:
    assert search_from([UidFloor(7, 300), None], 7) == WHOLE_FOLDER
    assert search_from([UidFloor(7, 300), UidFloor(6, 500)], 7) == WHOLE_FOLDER
    assert search_from([UidFloor(6, 300)], 7) == WHOLE_FOLDER
    assert search_from([], 7) == WHOLE_FOLDER
