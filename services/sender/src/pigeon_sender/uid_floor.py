"""Where in the Sent folder a dead sender's copies can be: the UID floor kept with them.

A chunk reads the Sent folder's UIDVALIDITY and UIDNEXT (IMAP STATUS) before it sends,
and each message's kept bytes carry that position. Whatever this attempt appends later
gets a UID at or above it (RFC 3501 2.3.1.1: UIDs only grow within one UIDVALIDITY). So a
sender that takes the chunk over and must learn which recovered copies are already in
Sent searches only the UIDs from the lowest floor on, instead of every message of a
folder that may hold years of mail (a header search reads each message it considers).

A floor of another UIDVALIDITY (the folder was recreated) or an unknown one (IMAP was
away when the chunk started, or bytes kept before floors existed) means: search it all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Prefix of a kept copy's value: "PGNCOPY1 <uidvalidity> <uidnext>\n" then the bytes.
MAGIC = b"PGNCOPY1 "
WHOLE_FOLDER = 1


@dataclass(frozen=True, slots=True)
class UidFloor:
    """No copy appended after this was read has a lower UID than `uid` (in `validity`)."""

    validity: int
    uid: int


@dataclass(frozen=True, slots=True)
class KeptCopy:
    raw: bytes
    floor: UidFloor | None


def pack(raw: bytes, floor: UidFloor | None) -> bytes:
    """The value kept in the copies bucket: the floor, then the message's exact bytes."""
    validity, uid = (floor.validity, floor.uid) if floor is not None else (0, 0)
    return b"%s%d %d\n%s" % (MAGIC, validity, uid, raw)


def unpack(value: bytes) -> KeptCopy:
    """A kept value back as bytes and floor; a value without the prefix is all message
    (kept by a sender from before floors) with an unknown floor."""
    if not value.startswith(MAGIC):
        return KeptCopy(value, None)
    line, _, raw = value.partition(b"\n")
    try:
        validity, uid = (int(part) for part in line[len(MAGIC) :].split(b" "))
    except ValueError:
        return KeptCopy(value, None)
    floor = UidFloor(validity, uid) if validity > 0 and uid > 0 else None
    return KeptCopy(raw, floor)


def search_from(floors: Iterable[UidFloor | None], validity: int) -> int:
    """The lowest UID that can hold one of the copies with `floors`, in a folder now of
    UIDVALIDITY `validity`."""
    lowest: int | None = None
    for floor in floors:
        if floor is None or floor.validity != validity:
            return WHOLE_FOLDER
        lowest = floor.uid if lowest is None else min(lowest, floor.uid)
    return WHOLE_FOLDER if lowest is None else lowest
