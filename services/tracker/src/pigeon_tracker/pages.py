"""The unsubscribe pages: small, self-contained HTML with every value escaped.

A page never acts by itself: it shows a button that POSTs back to the same URL. The only
style is one inline block, allowed by its hash in a CSP that allows nothing else (no
scripts, no images, no frames, forms only to this origin).
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from enum import Enum

from pigeon_tracker.forms import ACTION_FIELD, RESUBSCRIBE

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:32em;margin:3em auto;padding:0 1em;"
    "color:#222}h1{font-size:1.4em}button{font:inherit;padding:.5em 1.2em;cursor:pointer}"
    ".quiet{color:#666;font-size:.9em}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-robots-tag", b"noindex, nofollow"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
]


class PageKind(Enum):
    """Which page to show."""

    CONFIRM = "confirm"  # subscribed: offer to unsubscribe
    UNSUBSCRIBED = "unsubscribed"  # just now, or earlier: offer to re-subscribe
    BLOCKED = "blocked"  # suppressed for another reason: nothing to offer
    RESUBSCRIBED = "resubscribed"  # just re-subscribed: offer to unsubscribe again


@dataclass(frozen=True)
class PageFacts:
    """What a page may say about the message's recipient and sender."""

    email: str
    sender: str  # the mailbox's From name (or address)
    just_now: bool = False


def _button(label: str, action: str) -> str:
    return (
        '<form method="post" action="">'
        f'<input type="hidden" name="{ACTION_FIELD}" value="{html.escape(action)}">'
        f'<button type="submit">{html.escape(label)}</button></form>'
    )


def _document(title: str, body: str) -> bytes:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex,nofollow">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    ).encode()


def render_page(kind: PageKind, facts: PageFacts) -> bytes:
    """The HTML of one page; `facts` are escaped here."""
    who = html.escape(facts.email)
    sender = html.escape(facts.sender or "this sender")
    if kind is PageKind.CONFIRM:
        return _document(
            "Unsubscribe",
            f"<h1>Unsubscribe?</h1><p>Stop emails from <b>{sender}</b> to <b>{who}</b>.</p>"
            + _button("Unsubscribe", "unsubscribe"),
        )
    if kind is PageKind.UNSUBSCRIBED:
        lead = "You are unsubscribed." if facts.just_now else "You are already unsubscribed."
        return _document(
            "Unsubscribed",
            f"<h1>{lead}</h1><p><b>{who}</b> will get no more emails from <b>{sender}</b>.</p>"
            '<p class="quiet">Unsubscribed by mistake?</p>' + _button("Re-subscribe", RESUBSCRIBE),
        )
    if kind is PageKind.BLOCKED:
        return _document(
            "Unsubscribed",
            f"<h1>You are unsubscribed.</h1><p><b>{who}</b> gets no emails from "
            f"<b>{sender}</b>.</p>",
        )
    return _document(
        "Subscribed",
        f"<h1>You are subscribed again.</h1><p><b>{who}</b> will get emails from "
        f"<b>{sender}</b> again.</p>" + _button("Unsubscribe", "unsubscribe"),
    )


NOT_FOUND_PAGE = _document("Not found", "<h1>Not found</h1><p>This link is not valid.</p>")
