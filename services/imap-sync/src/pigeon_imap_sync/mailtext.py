"""Text out of a parsed message that may be broken in any way: headers and part bodies.

Everything here returns `str` and never raises on bad input: unknown charsets, 8-bit bytes
in headers, broken RFC 2047 words and bad transfer encodings all decode with replacement
characters. A string meant for the caller goes through `one_line`, so it carries no CR, LF
or other line break (a header value must not split a log line or a header it is copied to).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses

# Line breaks Python's str.splitlines knows, other controls, and whitespace runs.
_BREAKS_AND_CONTROLS = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]+")
_ANGLE_TOKEN = re.compile(r"<([^<>\s]+)>")
# The end of a paragraph, or of a header block.
BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
# Headers and subjects: the RFC 5322 line limit is plenty for anything we show or store.
MAX_HEADER_CHARS = 998
# Read as UTF-8: "8-bit bytes of unknown charset", and ASCII (often a lie about 8-bit text).
_READ_AS_UTF8 = frozenset({"unknown-8bit", "x-unknown", "us-ascii", "ascii"})


def one_line(text: str, limit: int = MAX_HEADER_CHARS) -> str:
    """`text` on one line: every run of whitespace or control characters becomes one space."""
    return _BREAKS_AND_CONTROLS.sub(" ", text).strip()[:limit]


def decode_bytes(data: bytes, charset: str | None) -> str:
    """`data` in `charset`, else UTF-8; undecodable bytes become U+FFFD."""
    name = (charset or "").strip().lower()
    if name and name not in _READ_AS_UTF8:
        try:
            return data.decode(name, errors="replace")
        except (LookupError, ValueError):  # unknown, not a text codec, or one that refuses
            pass
    return data.decode("utf-8", errors="replace")


def _unescape(text: str) -> str:
    # message_from_bytes keeps 8-bit header bytes as lone surrogates; turn them back.
    return decode_bytes(text.encode("utf-8", errors="surrogateescape"), None)


def header_text(msg: Message, name: str) -> str:
    """The first `name` header, RFC 2047 words decoded, on one line ('' when absent)."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        chunks = decode_header(value)
    except Exception:  # a malformed encoded word: keep the text as it came
        return one_line(_unescape(str(value)))
    text = "".join(
        decode_bytes(chunk, charset) if isinstance(chunk, bytes) else _unescape(chunk)
        for chunk, charset in chunks
    )
    return one_line(text)


def header_address(msg: Message, name: str) -> str:
    """The first address in header `name` ('' when there is none)."""
    for _, address in getaddresses([header_text(msg, name)]):
        if "@" in address:
            return one_line(address)
    return ""


def angle_ids(value: str) -> list[str]:
    """The `<...>` tokens of a Message-ID-like header, without brackets, in order.

    A header without brackets (some clients write bare ids) gives its whitespace-separated
    words instead.
    """
    found = _ANGLE_TOKEN.findall(value)
    return found if found else value.split()


def part_text(part: Message) -> str:
    """The decoded body of one non-multipart part ('' for a multipart or empty one)."""
    if part.is_multipart():
        return ""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset())


def walk_parts(msg: Message) -> Iterator[Message]:
    """`msg` and all its parts, attached messages included, in order: `Message.walk`
    as a loop, since nesting depth is up to the sender and recursion has a limit."""
    stack = [msg]
    while stack:
        part = stack.pop()
        yield part
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(reversed([sub for sub in payload if isinstance(sub, Message)]))


def body_text(msg: Message, limit: int) -> str:
    """The text/* parts of `msg`, joined, at most `limit` chars."""
    pieces: list[str] = []
    size = 0
    for part in walk_parts(msg):
        if part.get_content_maintype() != "text":
            continue
        text = part_text(part)
        pieces.append(text)
        size += len(text)
        if size >= limit:
            break
    return "\n".join(pieces)[:limit]
