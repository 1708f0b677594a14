"""The fast path's MIME writer: a fixed multipart/alternative skeleton around two bodies.

The layout is what `EmailMessage` writes for the exact path (text/plain then
text/html, `charset="utf-8"`, CRLF, boundary delimiters preceded by a blank line);
only the header lines and the encoded bodies change per message. Bodies are
quoted-printable with `binascii.b2a_qp` (lines of at most 76 octets), or base64 when
that is smaller (text that is mostly non-ASCII); both paths choose with
`transfer_encoding`.
"""

from __future__ import annotations

import base64
import binascii

QUOTED_PRINTABLE = "quoted-printable"
BASE64 = "base64"
_HIGH_BYTES = bytes(range(128, 256))


def transfer_encoding(body: str) -> str:
    """quoted-printable, or base64 when more than a sixth of the bytes are non-ASCII."""
    if body.isascii():
        return QUOTED_PRINTABLE
    data = body.encode("utf-8")
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    return BASE64 if high * 6 > len(data) else QUOTED_PRINTABLE


def encode_body(body: str, cte: str) -> bytes:
    """`body` (LF line endings, final LF) encoded with CRLF line endings."""
    if cte == QUOTED_PRINTABLE:
        return binascii.b2a_qp(body.encode("utf-8")).replace(b"\n", b"\r\n")
    data = body.replace("\n", "\r\n").encode("utf-8")
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _part_headers(subtype: str, cte: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
    ).encode("ascii")


_PART_HEADERS = {
    (subtype, cte): _part_headers(subtype, cte)
    for subtype in ("plain", "html")
    for cte in (QUOTED_PRINTABLE, BASE64)
}


def content_type(boundary: str) -> str:
    """The top-level Content-Type value (decoded form)."""
    return f'multipart/alternative; boundary="{boundary}"'


def assemble(headers: str, boundary: str, text: str, html: str) -> bytes:
    """The whole message: `headers` (lines with CRLF, without Content-Type) and two bodies."""
    text_cte = transfer_encoding(text)
    html_cte = transfer_encoding(html)
    delimiter = f"--{boundary}\r\n".encode("ascii")
    return b"".join(
        (
            headers.encode("ascii"),
            f"Content-Type: {content_type(boundary)}\r\n\r\n".encode("ascii"),
            delimiter,
            _PART_HEADERS["plain", text_cte],
            encode_body(text, text_cte),
            b"\r\n",
            delimiter,
            _PART_HEADERS["html", html_cte],
            encode_body(html, html_cte),
            b"\r\n",
            f"--{boundary}--\r\n".encode("ascii"),
        )
    )
