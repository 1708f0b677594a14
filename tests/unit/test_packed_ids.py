"""Recipient ids packed 16 bytes each, read back as the chunks of a run."""

from __future__ import annotations

import uuid

from pigeon_common.jobs import PackedIds


def test_chunks_give_back_every_id_in_order_in_groups_of_the_size() -> None:
    ids = [uuid.uuid4() for _ in range(7)]
    packed = PackedIds(b"".join(i.bytes for i in ids))
    assert len(packed) == 7
    assert packed.chunk_count(3) == 3
    assert list(packed.chunks(3)) == [ids[0:3], ids[3:6], ids[6:7]]
    assert list(packed.chunks(7)) == [ids]


def test_no_ids_make_no_chunks() -> None:
    packed = PackedIds(b"")
    assert len(packed) == 0
    assert packed.chunk_count(100) == 0
    assert list(packed.chunks(100)) == []
