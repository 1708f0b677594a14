"""Header values: what data may put in them, and how the fast path writes them.

No header value can carry a line break (DESIGN §2, invariant 6): every value from a
template or from data (the rendered subject, display names) passes `header_text`,
which turns control characters, NEL, LS and PS (Python's email package splits on
those) into spaces and collapses whitespace runs to one space.

The writers below follow RFC 5322 and RFC 2047: plain text when it is printable
ASCII (a quoted string for display names with specials), folded at spaces to 78
columns; otherwise base64 encoded words that never split a character, one per folded
line. Anything containing "=?" is encoded, so data cannot pose as an encoded word.

A display name too long for one encoded word (over 42 UTF-8 bytes, or a single ASCII
word too long to fold) is cut preferably after a space, the space kept inside the
word: RFC 2047 readers (mail programs) ignore the folding between encoded words.
Python's email parser does not, in phrases: it reads such a name with an extra space
at each cut. The standard library's own writer makes the opposite trade.
"""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime
from email.utils import format_datetime

from pigeon_common.validation import CONTROL_CHARACTERS, InvalidAddressError

MAX_LINE = 78
_SURROGATES = re.compile("[\ud800-\udfff]")
_PRINTABLE = re.compile(r"[ -~]*")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ATEXT_PHRASE = re.compile(rf"{_ATEXT}(?: {_ATEXT})*")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_DOMAIN = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
# The characters that make the standard library quote a display name.
_SPECIALS = frozenset('()<>@,:;."[]')
_WORD_BYTES = 39  # "Subject: " + a 39-byte word is 73 columns
_PHRASE_WORD_BYTES = 42  # "From: " + a 42-byte word is 74 columns
_LONGEST_FOLDABLE_WORD = 70
_last_date = (0, "")  # (second, formatted): one format per second, not per message


def header_text(value: str) -> str:
    """`value` made safe for a header: no control characters or line breaks, one-spaced."""
    if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
        return value  # the common case, checked without regular expressions
    value = _SURROGATES.sub("\ufffd", value)
    return " ".join(CONTROL_CHARACTERS.sub(" ", value).split())


def wire_domain(domain: str) -> str:
    """An ASCII domain (IDN as Punycode); InvalidAddressError when it is not a domain."""
    try:
        ascii_domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidAddressError(f"invalid domain {domain!r}") from None
    if not _DOMAIN.fullmatch(ascii_domain):
        raise InvalidAddressError(f"invalid domain {domain!r}")
    return ascii_domain


def wire_address(address: str) -> str:
    """The address as it goes in a header; refuses what could break or confuse one.

    Dot-atom local parts only (quoted ones are refused), ASCII only (a non-ASCII local
    part would need SMTPUTF8); an IDN domain is written in Punycode.
    """
    if CONTROL_CHARACTERS.search(address):
        raise InvalidAddressError("an address must not contain control characters")
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL_PART.fullmatch(local):
        raise InvalidAddressError(f"invalid address {address!r}")
    return f"{local}@{wire_domain(domain)}"


def format_date(now: datetime | None) -> str:
    """The Date header value (now by default); a naive datetime is taken as UTC."""
    global _last_date
    if now is None:
        second = int(time.time())
        if _last_date[0] != second:
            _last_date = (second, format_datetime(datetime.fromtimestamp(second, UTC)))
        return _last_date[1]
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return format_datetime(now)


def encoded_words(text: str, size: int = _WORD_BYTES, after_space: bool = False) -> list[str]:
    """RFC 2047 base64 words of `text` of at most `size` bytes; cut after a space if asked."""
    data = text.encode("utf-8")
    words: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + size, len(data))
        space = data.rfind(b" ", start, end) if after_space and end < len(data) else -1
        if space > start:
            end = space + 1
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start = end
    return words


def _fold(line: str) -> str:
    """A header line folded at spaces to 78 columns where it can be, with CRLF."""
    if len(line) <= MAX_LINE:
        return line + "\r\n"
    lines: list[str] = []
    current = ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > MAX_LINE:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return "\r\n ".join(lines) + "\r\n"


def unstructured_header(name: str, value: str) -> str:
    """A header line (with CRLF) for a value already passed through `header_text`."""
    if "=?" not in value and _PRINTABLE.fullmatch(value) and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}\r\n"
    return f"{name}: " + "\r\n ".join(encoded_words(value)) + "\r\n"


def decoded_address(display_name: str, address: str) -> str:
    """The header's decoded value, as the standard library's `Address` prints it."""
    if not display_name:
        return address
    if not _SPECIALS.isdisjoint(display_name):
        escaped = display_name.replace("\\", "\\\\").replace('"', '\\"')
        display_name = f'"{escaped}"'
    return f"{display_name} <{address}>"


def address_header(name: str, display_name: str, address: str) -> str:
    """A From/To header line (with CRLF); `display_name` already passed `header_text`."""
    if not display_name:
        return f"{name}: {address}\r\n"
    if (
        "=?" not in display_name
        and _PRINTABLE.fullmatch(display_name)
        and max(map(len, display_name.split(" "))) <= _LONGEST_FOLDABLE_WORD
    ):
        if _ATEXT_PHRASE.fullmatch(display_name):
            return _fold(f"{name}: {display_name} <{address}>")
        escaped = display_name.replace("\\", "\\\\").replace('"', '\\"')
        return _fold(f'{name}: "{escaped}" <{address}>')
    words = encoded_words(display_name, _PHRASE_WORD_BYTES, after_space=True)
    if len(words) == 1 and len(name) + len(words[0]) + len(address) + 5 <= MAX_LINE:
        return f"{name}: {words[0]} <{address}>\r\n"
    return f"{name}: " + "\r\n ".join(words) + f"\r\n <{address}>\r\n"
