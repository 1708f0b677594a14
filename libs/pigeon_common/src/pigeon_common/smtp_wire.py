"""The hot path of an SMTP session: replies read off the socket, commands pipelined.

aiosmtplib does the negotiation (TLS, EHLO, AUTH); then this protocol takes over the
transport, so a message costs two round trips instead of four when the server offers
PIPELINING (RFC 2920): MAIL, RCPT and DATA in one write, then the body. Which reply
failed still tells whether the data was handed over (see smtp_outcomes).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

MAX_REPLY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


def parse_replies(buffer: bytes, partial: list[bytes]) -> tuple[list[Reply], bytes]:
    """Complete replies in `buffer` (multi-line ones joined), and the unparsed rest.
    `partial` holds the continuation lines of a reply still open; it is updated."""
    replies: list[Reply] = []
    start = 0
    while True:
        end = buffer.find(b"\n", start)
        if end < 0:
            break
        line = buffer[start:end].rstrip(b"\r")
        start = end + 1
        partial.append(line[4:])
        if line[3:4] == b"-":
            continue
        try:
            code = int(line[:3])
        except ValueError:
            code = 500
        text = b"\n".join(partial).decode("utf-8", "replace")
        partial.clear()
        replies.append(Reply(code, text))
    return replies, buffer[start:]


def dot_stuffed(message: bytes) -> bytes:
    """The DATA payload: lines starting with '.' doubled, CRLF, and the final '.'."""
    if message.startswith(b"."):
        message = b"." + message
    message = message.replace(b"\r\n.", b"\r\n..")
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + b".\r\n"


class ReplyReader(asyncio.Protocol):
    """Collects replies as they arrive; `read(n)` waits for the next n."""

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.lost: Exception | None = None
        self._replies: deque[Reply] = deque()
        self._rest = b""
        self._partial: list[bytes] = []
        self._wanted = 0
        self._waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        replies, self._rest = parse_replies(self._rest + data, self._partial)
        if len(self._rest) > MAX_REPLY_BYTES:
            self.lost = ConnectionError("reply too long")
            if self.transport is not None:
                self.transport.close()
        self._replies.extend(replies)
        self._wake()

    def eof_received(self) -> bool:
        self.lost = self.lost or ConnectionError("the server closed the connection")
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or exc or ConnectionError("the server closed the connection")
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        ready = len(self._replies) >= self._wanted or self.lost is not None
        if waiter is not None and not waiter.done() and ready:
            waiter.set_result(None)

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing() or self.lost is not None:
            raise ConnectionError("connection lost")
        self.transport.write(data)

    async def read(self, count: int, timeout: float) -> list[Reply]:
        if len(self._replies) < count:
            if self.lost is not None:
                raise ConnectionError(str(self.lost))
            self._wanted = count
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            finally:
                self._waiter = None
            if len(self._replies) < count:
                raise ConnectionError(str(self.lost or "connection lost"))
        return [self._replies.popleft() for _ in range(count)]
