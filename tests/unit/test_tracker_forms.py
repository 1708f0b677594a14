"""RFC 8058 one-click bodies in both encodings, and our page's buttons."""

from __future__ import annotations

import pytest

from pigeon_tracker.forms import UnsubscribeRequest, parse_form, read_unsubscribe_post

URLENCODED = "application/x-www-form-urlencoded"


def multipart(boundary: str, *fields: tuple[str, str], newline: str = "\r\n") -> bytes:
    parts = "".join(
        f'--{boundary}{newline}Content-Disposition: form-data; name="{name}"{newline}'
        f"{newline}{value}{newline}"
        for name, value in fields
    )
    return f"{parts}--{boundary}--{newline}".encode()


def test_one_click_urlencoded() -> None:
    got = read_unsubscribe_post(URLENCODED, b"List-Unsubscribe=One-Click")
    assert got == UnsubscribeRequest("unsubscribe", "one_click")
    charset = f"{URLENCODED}; charset=UTF-8"
    assert read_unsubscribe_post(charset, b"List-Unsubscribe=One-Click").method == "one_click"


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_one_click_multipart(newline: str) -> None:
    boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    body = multipart(boundary, ("List-Unsubscribe", "One-Click"), newline=newline)
    content_type = f"multipart/form-data; boundary={boundary}"
    assert read_unsubscribe_post(content_type, body) == UnsubscribeRequest(
        "unsubscribe", "one_click"
    )
    quoted = f'multipart/form-data; boundary="{boundary}"'
    assert read_unsubscribe_post(quoted, body).method == "one_click"


def test_multipart_fields_keep_order_and_skip_unnamed_parts() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nno name\r\n"
        b'--b\r\nContent-Disposition: form-data; name="action"\r\n\r\nresubscribe\r\n--b--\r\n'
    )
    assert parse_form("multipart/form-data; boundary=b", body) == [
        ("a", "1"),
        ("action", "resubscribe"),
    ]


def test_page_buttons_and_other_bodies() -> None:
    assert read_unsubscribe_post(URLENCODED, b"action=resubscribe") == UnsubscribeRequest(
        "resubscribe", "page"
    )
    assert read_unsubscribe_post(URLENCODED, b"action=unsubscribe") == UnsubscribeRequest(
        "unsubscribe", "page"
    )
    # One-click wins over a button field; anything unknown is a page unsubscribe.
    both = b"action=resubscribe&List-Unsubscribe=One-Click"
    assert read_unsubscribe_post(URLENCODED, both).action == "unsubscribe"
    for content_type, body in [
        ("", b""),
        ("text/plain", b"List-Unsubscribe=One-Click"),
        ("application/json", b'{"List-Unsubscribe": "One-Click"}'),
        ("multipart/form-data", b"no boundary at all"),
        ("multipart/form-data; boundary=x", b"\x00\xff garbage"),
        (URLENCODED, b"%%%&&&=="),
    ]:
        assert read_unsubscribe_post(content_type, body) == UnsubscribeRequest(
            "unsubscribe", "page"
        )
