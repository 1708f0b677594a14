"""The tracker's HTTP answers as ready-made ASGI messages.

The hot answers (pixel, redirect head) are built once; ASGI servers only read the
messages they are given, so the same dicts are sent again and again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pigeon_tracker.pages import NOT_FOUND_PAGE, PAGE_HEADERS

Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

# The classic 43-byte transparent 1x1 GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
RETRY_AFTER_SEC = 5
NO_STORE = (b"cache-control", b"no-store")

PIXEL_START: dict[str, Any] = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"image/gif"),
        (b"content-length", str(len(PIXEL)).encode()),
        (b"cache-control", b"no-store, no-cache, must-revalidate, private, max-age=0"),
        (b"pragma", b"no-cache"),
        (b"expires", b"0"),
    ],
}
PIXEL_BODY: dict[str, Any] = {"type": "http.response.body", "body": PIXEL}
EMPTY_BODY: dict[str, Any] = {"type": "http.response.body", "body": b""}


def redirect_start(location: bytes) -> dict[str, Any]:
    return {
        "type": "http.response.start",
        "status": 302,
        "headers": [
            (b"location", location),
            (b"content-length", b"0"),
            NO_STORE,
            (b"referrer-policy", b"no-referrer"),
        ],
    }


async def respond(
    send: Send, status: int, body: bytes, headers: Headers, *, head: bool = False
) -> None:
    """One whole answer; a HEAD gets the headers (with the GET's length) and no body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})


async def text(
    send: Send, status: int, message: str, extra: Headers | None = None, *, head: bool = False
) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), NO_STORE, *(extra or [])]
    await respond(send, status, message.encode(), headers, head=head)


async def not_found(send: Send, *, head: bool = False) -> None:
    await respond(send, 404, NOT_FOUND_PAGE, PAGE_HEADERS, head=head)


async def method_not_allowed(send: Send, allow: bytes) -> None:
    await text(send, 405, "method not allowed\n", [(b"allow", allow)])


async def unavailable(send: Send, *, head: bool = False) -> None:
    """503: the event could not be stored (or the tracker is not connected yet)."""
    retry = (b"retry-after", str(RETRY_AFTER_SEC).encode())
    await text(send, 503, "temporarily unavailable, try again\n", [retry], head=head)


async def too_large(send: Send) -> None:
    await text(send, 413, "request body too large\n")
