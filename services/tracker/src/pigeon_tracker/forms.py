"""The bodies POSTed to the unsubscribe URL: RFC 8058 one-click and our page's buttons.

Pure parsing, no I/O. Mail clients send `List-Unsubscribe=One-Click` either as
`application/x-www-form-urlencoded` or as `multipart/form-data` (RFC 7578, parsed here
with the standard library's MIME parser); anything else yields no fields, which the
caller treats as a plain "unsubscribe" from the page.
"""

from __future__ import annotations

import email.parser
import email.policy
import urllib.parse
from dataclasses import dataclass
from typing import Literal

MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 50
ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
ACTION_FIELD = "action"
RESUBSCRIBE = "resubscribe"
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

Fields = list[tuple[str, str]]
Action = Literal["unsubscribe", "resubscribe"]
Method = Literal["one_click", "page"]


class FormTooLargeError(Exception):
    """Raised when a request body exceeds `limit` bytes (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


def media_type(content_type: str) -> str:
    """`multipart/form-data` of `multipart/form-data; boundary=x`, lower-cased."""
    return content_type.partition(";")[0].strip().lower()


def parse_urlencoded(body: bytes) -> Fields:
    text = body.decode("utf-8", "replace")
    try:
        return urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:  # more fields than allowed
        return []


def parse_multipart(content_type: str, body: bytes) -> Fields:
    """The text fields of a multipart/form-data body (parts without a name are skipped)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return []
    fields: Fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        value = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        fields.append((name, value))
        if len(fields) >= MAX_FIELDS:
            break
    return fields


def parse_form(content_type: str, body: bytes) -> Fields:
    """The fields of a POSTed form in either encoding; [] for any other body."""
    kind = media_type(content_type)
    if kind == URLENCODED:
        return parse_urlencoded(body)
    if kind == MULTIPART:
        return parse_multipart(content_type, body)
    return []


@dataclass(frozen=True)
class UnsubscribeRequest:
    """What a POST to the unsubscribe URL asks for."""

    action: Action
    method: Method


def read_unsubscribe_post(content_type: str, body: bytes) -> UnsubscribeRequest:
    """One-click when the body carries `List-Unsubscribe=One-Click`; re-subscribe when our
    page's button says so; otherwise an unsubscribe from the page."""
    fields = parse_form(content_type, body)
    for name, value in fields:
        if name.strip() == ONE_CLICK_FIELD and value.strip().lower() == ONE_CLICK_VALUE.lower():
            return UnsubscribeRequest("unsubscribe", "one_click")
    for name, value in fields:
        if name == ACTION_FIELD and value.strip().lower() == RESUBSCRIBE:
            return UnsubscribeRequest("resubscribe", "page")
    return UnsubscribeRequest("unsubscribe", "page")
