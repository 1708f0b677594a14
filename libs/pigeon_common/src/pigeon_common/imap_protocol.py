"""IMAP4rev1 wire format for the project's IMAP client: pure functions, no sockets.

What is here: the errors the client raises, command encoding (quoted strings, synchronizing
and non-synchronizing literals: RFC 3501, RFC 7888 LITERAL+/LITERAL-), an incremental parser
that turns received bytes into whole responses (literals included), the response payloads
both the sender and imap-sync read (CAPABILITY, LIST with RFC 6154 special-use flags,
SEARCH), modified UTF-7 mailbox names (RFC 3501 5.1.3) and the split of messages into
batches (a MULTIAPPEND, RFC 3502, or a bounded download). `pigeon_common.imap_client` does
the I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Final, TypeAlias

# --- protocol words ----------------------------------------------------------------------


class Capability(StrEnum):
    """Capabilities the client and its users look for (compared upper-case)."""

    MULTIAPPEND = "MULTIAPPEND"  # RFC 3502: many messages in one APPEND
    LITERAL_PLUS = "LITERAL+"  # RFC 7888: non-synchronizing literals of any size
    LITERAL_MINUS = "LITERAL-"  # RFC 7888: non-synchronizing literals up to 4096 bytes
    SPECIAL_USE = "SPECIAL-USE"  # RFC 6154: \Sent and friends on LIST
    STARTTLS = "STARTTLS"
    LOGINDISABLED = "LOGINDISABLED"
    UNSELECT = "UNSELECT"  # RFC 3691


class Status(StrEnum):
    """The words of a status response."""

    OK = "OK"
    NO = "NO"
    BAD = "BAD"
    PREAUTH = "PREAUTH"
    BYE = "BYE"


class ResponseKind(Enum):
    TAGGED = "tagged"
    UNTAGGED = "untagged"
    CONTINUATION = "continuation"


SEEN_FLAG: Final = "\\Seen"
SENT_FLAG: Final = "\\Sent"
NOSELECT_FLAGS: Final = frozenset({"\\noselect", "\\nonexistent"})

UNTAGGED: Final = "*"
CONTINUATION: Final = "+"
CAPABILITY_CODE: Final = "CAPABILITY"
LITERAL_MINUS_MAX: Final = 4096  # RFC 7888: the largest literal LITERAL- lets us send unasked

# Response codes (RFC 3501, RFC 5530) after which the same command may well succeed later.
TEMPORARY_CODES: Final = frozenset(
    {"UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG", "OVERQUOTA", "EXPUNGEISSUED"}
)

CRLF: Final = b"\r\n"
_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\}\Z")  # `{n}` (or literal8 `~{n}`) ending a line
_LITERAL_TOKEN = re.compile(rb"~?\{(\d+)\}")
_FLAG = re.compile(r"\\?[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+")  # an atom, `\` allowed in front
_NIL = b"NIL"
_STATUS_WORDS = frozenset(status.value for status in Status)

DEFAULT_MAX_LINE: Final = 1 << 20  # one response line outside literals
DEFAULT_MAX_LITERAL: Final = 1 << 30


# --- errors ------------------------------------------------------------------------------


class ImapError(Exception):
    """An IMAP command failed: the server answered NO or BAD (or this client gave up).

    `code` is the response code in brackets (`TRYCREATE`, `OVERQUOTA`, `AUTHENTICATIONFAILED`;
    None when the server sent none), `text` the server's human text, `status` the answer word
    (NO, BAD, BYE) and `command` the command that failed. `temporary` says whether the same
    command may succeed later: the one place a caller maps a failure to retry or give up.
    """

    def __init__(
        self, code: str | None, text: str, *, status: str = Status.NO, command: str = ""
    ) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.status = status
        self.command = command

    def __str__(self) -> str:
        where = f"{self.command} " if self.command else ""
        bracket = f"[{self.code}] " if self.code else ""
        return f"IMAP {where}failed: {self.status} {bracket}{self.text}".rstrip()

    @property
    def temporary(self) -> bool:
        return self.code is not None and self.code.upper() in TEMPORARY_CODES


class ImapAuthError(ImapError):
    """LOGIN was refused (wrong credentials, or login disabled on this connection)."""


class ImapConnectionError(ImapError, ConnectionError):
    """The connection failed, was closed by the server (with or without BYE) or timed out.

    The connection is unusable afterwards. When raised by the sender's `append_many`,
    `unconfirmed` holds the indices of the messages not confirmed stored: the batch in
    flight (which the server may or may not have stored) and every message after it.
    """

    def __init__(
        self, text: str, *, code: str | None = None, unconfirmed: Sequence[int] = ()
    ) -> None:
        super().__init__(code, text, status=Status.BYE)
        self.unconfirmed = tuple(unconfirmed)

    @property
    def temporary(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"IMAP connection lost: {self.text}"


class ImapTimeoutError(ImapConnectionError, TimeoutError):
    """The server sent nothing within the timeout (connecting, or waiting for a response)."""


class ImapProtocolError(ImapConnectionError):
    """The server sent something that is not IMAP; the connection is dropped."""


class ImapRefusedError(ImapConnectionError):
    """The server's greeting was not OK or PREAUTH (a `* BYE` or `* NO`): it refused us."""


# --- commands ----------------------------------------------------------------------------


class LiteralMode(Enum):
    """How literals are sent: wait for `+` (SYNC), never wait (PLUS), or only when large."""

    SYNC = "sync"
    PLUS = "literal+"
    MINUS = "literal-"


@dataclass(frozen=True)
class StringArg:
    """An IMAP string: quoted when it can be, else a literal (CR, LF, NUL or 8-bit bytes)."""

    value: bytes


@dataclass(frozen=True)
class LiteralArg:
    """Bytes always sent as a literal, exactly as given (a message to APPEND)."""

    data: bytes


Arg: TypeAlias = str | StringArg | LiteralArg
"""A command argument; a `str` is sent as is (command names, atoms, flag lists)."""


def literal_mode(capabilities: Iterable[str]) -> LiteralMode:
    caps = set(capabilities)
    if Capability.LITERAL_PLUS in caps:
        return LiteralMode.PLUS
    if Capability.LITERAL_MINUS in caps:
        return LiteralMode.MINUS
    return LiteralMode.SYNC


def quote_string(value: bytes) -> bytes | None:
    """`value` as an IMAP quoted string, or None when only a literal can carry it."""
    if any(b in (0, 10, 13) or b > 0x7F for b in value):
        return None
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def flag_list(flags: Iterable[str]) -> str:
    """`(\\Seen \\Flagged)`; raises ValueError for something that is not a flag."""
    flags = tuple(flags)
    for flag in flags:
        if not _FLAG.fullmatch(flag):
            raise ValueError(f"not an IMAP flag: {flag!r}")
    return "(" + " ".join(flags) + ")"


def encode_command(tag: str, args: Sequence[Arg], mode: LiteralMode) -> list[bytes]:
    """The bytes of one command, split where a synchronizing literal must wait for `+`.

    The first segment is sent at once; each later one only after the server's continuation
    request. With LITERAL+ the whole command is one segment.
    """
    segments: list[bytes] = []
    parts: list[bytes] = [tag.encode("ascii")]

    def literal(data: bytes) -> None:
        nonlocal parts
        sync = mode is LiteralMode.SYNC or (
            mode is LiteralMode.MINUS and len(data) > LITERAL_MINUS_MAX
        )
        parts.append(b"{%d}\r\n" % len(data) if sync else b"{%d+}\r\n" % len(data))
        if sync:
            segments.append(b"".join(parts))
            parts = []
        parts.append(data)

    for arg in args:
        parts.append(b" ")
        if isinstance(arg, str):
            parts.append(arg.encode("ascii"))
        elif isinstance(arg, StringArg):
            quoted = quote_string(arg.value)
            if quoted is None:
                literal(arg.value)
            else:
                parts.append(quoted)
        else:
            literal(arg.data)
    parts.append(CRLF)
    segments.append(b"".join(parts))
    return segments


def plan_batches(sizes: Sequence[int], max_messages: int, max_bytes: int) -> list[range]:
    """Split messages of `sizes` bytes into consecutive batches of at most `max_messages`
    messages and `max_bytes` bytes; a message larger than `max_bytes` is a batch of its own."""
    if max_messages < 1 or max_bytes < 1:
        raise ValueError("batches need room for at least one message and one byte")
    batches: list[range] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and (index - start >= max_messages or total + size > max_bytes):
            batches.append(range(start, index))
            start, total = index, 0
        total += size
    if start < len(sizes):
        batches.append(range(start, len(sizes)))
    return batches


# --- responses ---------------------------------------------------------------------------

Value: TypeAlias = "bytes | list[Value] | None"
"""A parsed value: an atom, number or string as bytes, NIL as None, a parenthesized list."""


@dataclass(frozen=True)
class Response:
    """One whole server response.

    `name` is the status word (OK, NO, BAD, PREAUTH, BYE) or the data name (CAPABILITY, LIST,
    SEARCH, EXISTS...), upper-case; `number` the message number of `* 3 EXISTS`. Status
    responses have `code` (inside the brackets) and `text`; data responses keep their payload
    in `rest`: line text and literal bytes alternating (`parse_values` reads it).
    """

    kind: ResponseKind
    tag: str
    name: str = ""
    number: int | None = None
    code: str | None = None
    text: str = ""
    rest: tuple[bytes, ...] = ()

    @property
    def status(self) -> Status | None:
        try:
            return Status(self.name)
        except ValueError:
            return None

    def is_tagged_ok(self) -> bool:
        return self.kind is ResponseKind.TAGGED and self.name == Status.OK

    def to_error(self, command: str = "", error: type[ImapError] = ImapError) -> ImapError:
        return error(self.code, self.text, status=self.name, command=command)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _parse_status(tag: str, kind: ResponseKind, name: str, chunks: Sequence[bytes]) -> Response:
    after = b"".join(chunks).lstrip(b" ")
    code: str | None = None
    if after.startswith(b"["):
        end = after.find(b"]")
        if end != -1:
            code = _text(after[1:end])
            after = after[end + 1 :].lstrip(b" ")
    return Response(kind, tag, name, code=code, text=_text(after))


def parse_response(chunks: Sequence[bytes]) -> Response:
    """A response from its line text and literals, alternating (`[line, lit, line, ...]`),
    line endings removed."""
    first = chunks[0]
    if first.startswith(b"+"):
        return Response(ResponseKind.CONTINUATION, CONTINUATION, text=_text(first[1:].lstrip()))
    raw_tag, _, after = first.partition(b" ")
    if not raw_tag or not after:
        raise ImapProtocolError(f"not an IMAP response: {first[:200]!r}")
    tag = raw_tag.decode("ascii", "replace")
    word, _, after = after.partition(b" ")
    if tag != UNTAGGED:
        name = word.upper().decode("ascii", "replace")
        if name not in (Status.OK, Status.NO, Status.BAD):
            raise ImapProtocolError(f"tagged response without OK/NO/BAD: {first[:200]!r}")
        return _parse_status(tag, ResponseKind.TAGGED, name, (after, *chunks[1:]))
    number: int | None = None
    if word.isdigit():
        number = int(word)
        word, _, after = after.partition(b" ")
    name = word.upper().decode("ascii", "replace")
    if number is None and name in _STATUS_WORDS:
        return _parse_status(tag, ResponseKind.UNTAGGED, name, (after, *chunks[1:]))
    return Response(ResponseKind.UNTAGGED, tag, name, number=number, rest=(after, *chunks[1:]))


class ResponseParser:
    """Turns the bytes received, in any pieces, into whole responses (literals included)."""

    def __init__(
        self, *, max_line: int = DEFAULT_MAX_LINE, max_literal: int = DEFAULT_MAX_LITERAL
    ) -> None:
        self._max_line = max_line
        self._max_literal = max_literal
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer known to hold no line end
        self._chunks: list[bytes] = []
        self._literal: int | None = None

    @property
    def pending(self) -> int:
        """Bytes received that are not part of a whole response yet."""
        return len(self._buffer) + sum(len(c) for c in self._chunks)

    def feed(self, data: bytes) -> list[Response]:
        self._buffer += data
        responses: list[Response] = []
        while True:
            if self._literal is not None:
                if len(self._buffer) < self._literal:
                    return responses
                self._chunks.append(bytes(self._buffer[: self._literal]))
                del self._buffer[: self._literal]
                self._literal = None
                continue
            end = self._buffer.find(b"\n", self._scanned)
            if end == -1:
                self._scanned = len(self._buffer)
                if self._scanned > self._max_line:
                    raise ImapProtocolError(f"response line longer than {self._max_line} bytes")
                return responses
            line = bytes(self._buffer[:end]).removesuffix(b"\r")
            del self._buffer[: end + 1]
            self._scanned = 0
            self._chunks.append(line)
            match = _LITERAL_AT_END.search(line)
            if match is not None:
                size = int(match.group(1))
                if size > self._max_literal:
                    raise ImapProtocolError(f"literal of {size} bytes is too large")
                self._literal = size
                continue
            chunks, self._chunks = self._chunks, []
            responses.append(parse_response(chunks))


def parse_values(chunks: Sequence[bytes]) -> list[Value]:
    """The values of a data response payload (`Response.rest`): atoms, numbers and strings as
    bytes, NIL as None, parenthesized lists as lists, literals as their bytes."""
    root: list[Value] = []
    stack: list[list[Value]] = [root]
    for index in range(0, len(chunks), 2):
        text = chunks[index]
        pos, end = 0, len(text)
        while pos < end:
            char = text[pos : pos + 1]
            if char == b" ":
                pos += 1
            elif char == b"(":
                nested: list[Value] = []
                stack[-1].append(nested)
                stack.append(nested)
                pos += 1
            elif char == b")":
                if len(stack) == 1:
                    raise ImapProtocolError(f"unbalanced ')' in {text[:200]!r}")
                stack.pop()
                pos += 1
            elif char == b'"':
                value, pos = _quoted(text, pos)
                stack[-1].append(value)
            elif (char == b"{" or text.startswith(b"~{", pos)) and _LITERAL_TOKEN.match(text, pos):
                if _LITERAL_AT_END.match(text, pos) is None or index + 1 >= len(chunks):
                    raise ImapProtocolError(f"literal not at the end of a line: {text[:200]!r}")
                stack[-1].append(chunks[index + 1])
                pos = end
            else:
                value, pos = _atom(text, pos)
                stack[-1].append(None if value.upper() == _NIL else value)
    if len(stack) != 1:
        raise ImapProtocolError("unbalanced '(' in response")
    return root


def _quoted(text: bytes, pos: int) -> tuple[bytes, int]:
    """The quoted string starting at `text[pos]` (a `"`) and the position after it."""
    out = bytearray()
    pos += 1
    while pos < len(text):
        byte = text[pos]
        if byte == 0x22:  # "
            return bytes(out), pos + 1
        if byte == 0x5C and pos + 1 < len(text):  # backslash
            pos += 1
            byte = text[pos]
        out.append(byte)
        pos += 1
    raise ImapProtocolError(f"unterminated quoted string in {text[:200]!r}")


def _atom(text: bytes, pos: int) -> tuple[bytes, int]:
    """An atom from `pos` to the next space or parenthesis; `[...]` (a section) may hold both."""
    start, depth = pos, 0
    while pos < len(text):
        byte = text[pos]
        if byte == 0x5B:  # [
            depth += 1
        elif byte == 0x5D and depth:  # ]
            depth -= 1
        elif depth == 0 and byte in (0x20, 0x28, 0x29):  # space ( )
            break
        pos += 1
    return text[start:pos], pos


# --- response payloads -------------------------------------------------------------------


def parse_capabilities(text: str) -> frozenset[str]:
    """`IMAP4rev1 LITERAL+ AUTH=PLAIN` → the upper-case capability names."""
    return frozenset(word.upper() for word in text.split())


def capabilities_in(response: Response) -> frozenset[str] | None:
    """The capabilities a response announces (`* CAPABILITY ...` or `[CAPABILITY ...]`)."""
    if response.kind is ResponseKind.UNTAGGED and response.name == CAPABILITY_CODE:
        return parse_capabilities(_text(b" ".join(response.rest)))
    code = response.code or ""
    if code.upper().startswith(CAPABILITY_CODE + " "):
        return parse_capabilities(code[len(CAPABILITY_CODE) :])
    return None


@dataclass(frozen=True)
class Mailbox:
    """One `LIST` answer. `raw_name` is what commands need; `name` is it decoded for display."""

    raw_name: str
    name: str
    delimiter: str | None
    flags: frozenset[str]

    def has_flag(self, flag: str) -> bool:
        return flag.lower() in {f.lower() for f in self.flags}

    @property
    def selectable(self) -> bool:
        return not any(f.lower() in NOSELECT_FLAGS for f in self.flags)


def parse_list(response: Response) -> Mailbox:
    """A `* LIST (flags) "delimiter" name` response (extended data after the name ignored)."""
    tokens = parse_values(response.rest)
    if len(tokens) < 3 or not isinstance(tokens[0], list) or not isinstance(tokens[2], bytes):
        raise ImapProtocolError(f"malformed LIST response: {response.rest!r}")
    flags = frozenset(_text(f) for f in tokens[0] if isinstance(f, bytes))
    delimiter = tokens[1]
    if isinstance(delimiter, list):
        raise ImapProtocolError(f"malformed LIST delimiter: {response.rest!r}")
    raw = _text(tokens[2])
    return Mailbox(
        raw_name=raw,
        name=display_mailbox_name(raw),
        delimiter=None if delimiter is None else _text(delimiter),
        flags=flags,
    )


def parse_search(response: Response) -> list[int]:
    """The numbers of a `* SEARCH 3 5 8` response."""
    tokens = parse_values(response.rest)
    try:
        return [int(t) for t in tokens if isinstance(t, bytes)]
    except ValueError:
        raise ImapProtocolError(f"malformed SEARCH response: {response.rest!r}") from None


def parse_status_items(response: Response) -> dict[str, int]:
    """The numbers of a `* STATUS "Sent" (UIDVALIDITY 7 UIDNEXT 42)` response, by name."""
    tokens = parse_values(response.rest)
    if not tokens or not isinstance(tokens[-1], list):
        raise ImapProtocolError(f"malformed STATUS response: {response.rest!r}")
    items = tokens[-1]
    try:
        return {
            _text(name).upper(): int(value)  # type: ignore[arg-type]
            for name, value in zip(items[::2], items[1::2], strict=True)
        }
    except (ValueError, TypeError):
        raise ImapProtocolError(f"malformed STATUS response: {response.rest!r}") from None


# --- mailbox names: modified UTF-7 -------------------------------------------------------


def encode_mailbox_name(name: str) -> str:
    """A display name in modified UTF-7 (RFC 3501 5.1.3): `Entwürfe` → `Entw&APw-rfe`."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(utf16).decode("ascii").rstrip("=").replace("/", ","))
            out.append("-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode_mailbox_name(raw: str) -> str:
    """A modified UTF-7 name decoded; raises ValueError when `raw` is not valid."""
    out: list[str] = []
    pos = 0
    while pos < len(raw):
        start = raw.find("&", pos)
        if start == -1:
            out.append(raw[pos:])
            break
        out.append(raw[pos:start])
        end = raw.find("-", start + 1)
        if end == -1:
            raise ValueError(f"unterminated '&' in mailbox name {raw!r}")
        if end == start + 1:
            out.append("&")
        else:
            encoded = raw[start + 1 : end].replace(",", "/")
            try:
                utf16 = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
                out.append(utf16.decode("utf-16-be"))
            except (binascii.Error, UnicodeDecodeError) as error:
                raise ValueError(f"bad modified UTF-7 in mailbox name {raw!r}") from error
        pos = end + 1
    return "".join(out)


def display_mailbox_name(raw: str) -> str:
    """`raw` decoded for display, or `raw` itself when it is not valid modified UTF-7."""
    try:
        return decode_mailbox_name(raw)
    except ValueError:
        return raw


def mailbox_argument(folder: str) -> StringArg:
    """The command argument for `folder`: a raw (ASCII) name as is; a name with non-ASCII
    characters is taken as a display name and encoded to modified UTF-7."""
    raw = folder if folder.isascii() else encode_mailbox_name(folder)
    return StringArg(raw.encode("ascii"))
