"""Which of our messages a message refers to, found through our Message-IDs.

Our Message-IDs name their campaign and recipient (`<campaign.recipient.nonce@domain>`,
`pigeon_common.render.message_id`), so any place one of them is quoted leads back to the
message. The places, from most to least reliable:

- `returned`: the Message-ID of a message a bounce returns (message/rfc822) or whose header
  it returns (text/rfc822-headers);
- `headers`: In-Reply-To, then References from the nearest ancestor (last) back;
- `anywhere`: our pattern anywhere in the message, raw or after base64/quoted-printable
  decoding (a bounce that pastes the original headers into its text).

A bounce puts `returned` first, everything else `headers` first. The message's own
Message-ID never counts as a reference to itself.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from enum import StrEnum

from pigeon_common.render.message_id import parse_message_id
from pigeon_imap_sync.mailtext import angle_ids, header_text, part_text, walk_parts

Reference = tuple[uuid.UUID, uuid.UUID]


class Field(StrEnum):
    MESSAGE_ID = "Message-ID"
    IN_REPLY_TO = "In-Reply-To"
    REFERENCES = "References"
    CONTENT_TRANSFER_ENCODING = "Content-Transfer-Encoding"


RETURNED_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
RETURNED_HEADER_TYPES = frozenset(
    {"text/rfc822-headers", "message/rfc822-headers", "message/global-headers"}
)
_ENCODED = frozenset({"base64", "quoted-printable"})
_UUID = r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"
# The shape of our Message-ID in running text; parse_message_id has the last word on it.
_OUR_ID_IN_TEXT = re.compile(rf"{_UUID}\.{_UUID}\.[A-Za-z0-9]+@[A-Za-z0-9.-]+")


def own_message_id(msg: Message) -> str:
    """The message's own Message-ID without angle brackets ('' when it has none)."""
    ids = angle_ids(header_text(msg, Field.MESSAGE_ID))
    return ids[0] if ids else ""


def header_references(msg: Message) -> tuple[Reference, ...]:
    """Our messages named in In-Reply-To and References: what makes a reply a reply."""
    return _ours(_header_ids(msg), own_message_id(msg))


def find_references(msg: Message, raw: bytes, *, returned_first: bool) -> tuple[Reference, ...]:
    """Our messages `msg` refers to, most reliable first (see the module docstring)."""
    returned = list(_returned_ids(msg))
    headers = _header_ids(msg)
    first, second = (returned, headers) if returned_first else (headers, returned)
    candidates = [*first, *second, *_ids_anywhere(msg, raw)]
    return _ours(candidates, own_message_id(msg))


def _header_ids(msg: Message) -> list[str]:
    in_reply_to = angle_ids(header_text(msg, Field.IN_REPLY_TO))
    references = angle_ids(header_text(msg, Field.REFERENCES))
    return [*in_reply_to, *reversed(references)]


def _returned_ids(msg: Message) -> Iterator[str]:
    for part in walk_parts(msg):
        content_type = part.get_content_type()
        payload = part.get_payload()
        if content_type in RETURNED_MESSAGE_TYPES and isinstance(payload, list):
            for returned in payload:
                if isinstance(returned, Message):
                    yield from angle_ids(header_text(returned, Field.MESSAGE_ID))
        elif content_type in RETURNED_HEADER_TYPES:
            headers = HeaderParser(policy=compat32).parsestr(part_text(part))
            yield from angle_ids(header_text(headers, Field.MESSAGE_ID))


def _ids_anywhere(msg: Message, raw: bytes) -> Iterator[str]:
    # Latin-1 maps every byte to one character: the raw text as it is, never an error.
    yield from _OUR_ID_IN_TEXT.findall(raw.decode("latin-1"))
    for part in walk_parts(msg):
        if header_text(part, Field.CONTENT_TRANSFER_ENCODING).lower() in _ENCODED:
            yield from _OUR_ID_IN_TEXT.findall(part_text(part))


def _ours(candidates: Iterable[str], own_id: str) -> tuple[Reference, ...]:
    found: dict[Reference, None] = {}  # a dict keeps the first-seen order
    for candidate in candidates:
        if candidate == own_id:
            continue
        reference = parse_message_id(candidate)
        if reference is not None:
            found.setdefault(reference, None)
    return tuple(found)
