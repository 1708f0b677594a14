"""Click tracking: which links a campaign registers, and how hrefs become signed URLs.

A click redirects only to a URL registered for the campaign (DESIGN §2, invariant 4),
so registration happens at compile time, from the template alone: every static
http(s) `href` of an `<a>` or `<area>`, and every `track_url('<constant URL>')`. A URL
computed from data is never registered. Left alone: mailto:, #anchors, relative links,
and hrefs containing personalization (the unsubscribe URL among them).

Personalization inside a URL attribute (href, src, ...) passes `safe_url`: whitespace,
control characters and quotes are percent-encoded, and a value that starts the
attribute may not bring a scheme other than http, https, mailto or tel (no
`javascript:` from data).
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import quote

from jinja2 import nodes
from jinja2.exceptions import SecurityError

from pigeon_common.render.slots import Slot, SlotTable
from pigeon_common.render.tokens import MAX_LINKS, TrackingUrls

URL_FILTER = "pigeon_url"
TRACK_URL = "track_url"
CLICK_URLS = "pigeon_click_urls"  # the context variable static links are read from
_LINK_TAGS = frozenset({"a", "area"})
_URL_ATTRIBUTES = frozenset({"href", "src", "background", "action", "formaction", "poster"})
_TRACKABLE = re.compile(r"https?://[^\s]+", re.IGNORECASE)
_URL_UNSAFE = re.compile(r"""[\s\x00-\x1f\x7f"'<>\\^`{|}]""")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel"})


class UnregisteredLinkError(SecurityError):
    """Raised when `track_url` is given a URL the campaign did not register."""


def is_trackable(url: str) -> bool:
    """Whether `url` is an absolute http(s) URL, the only kind a click may redirect to."""
    return bool(_TRACKABLE.fullmatch(url))


def safe_url(value: object, at_start: bool = False) -> str:
    """A value for a URL attribute (see module docstring)."""
    text = _URL_UNSAFE.sub(lambda m: quote(m.group(), safe=""), str(value))
    if at_start:
        scheme = _SCHEME.match(text)
        if scheme and scheme.group(1).lower() not in _SAFE_SCHEMES:
            return "#"
    return text


@dataclass(frozen=True)
class LinkScan:
    """The HTML with static hrefs swapped for click slots, and the URL-context slots.

    `url_filters` maps a placeholder standing in a URL attribute to the filter text
    its tag gets (`|pigeon_url` or `|pigeon_url(true)` when it starts the value).
    """

    html: str
    url_filters: dict[str, str]
    static_links: list[str]


class _StartTags(HTMLParser):
    """Collects each start tag with its offset and raw text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[tuple[int, int], str, str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or ""
        self.tags.append((self.getpos(), raw, tag, attrs))

    handle_startendtag = handle_starttag


def _start_tag(tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> str:
    """A start tag written back from its parsed attributes."""
    written = "".join(
        f" {name}" if value is None else f' {name}="{html_lib.escape(value)}"'
        for name, value in attrs
    )
    return f"<{tag}{written}{' /' if self_closing else ''}>"


def scan_links(html: str, table: SlotTable) -> LinkScan:
    """Point static http(s) links at click slots; find URL-context placeholders.

    Static links are numbered first, in document order (one index per distinct URL),
    and become `pigeon_click_urls[<index>]`, also without a tracker base (where that
    is the URL itself), so `links` lists the same destinations either way.
    """
    parser = _StartTags()
    parser.feed(html)
    parser.close()
    line_starts = [0]
    for match in re.finditer("\n", html):
        line_starts.append(match.end())

    url_filters: dict[str, str] = {}
    static_links: dict[str, int] = {}
    edits: list[tuple[int, str, str]] = []
    for (line, column), raw, tag, attrs in parser.tags:
        offset = line_starts[line - 1] + column
        new_attrs = list(attrs)
        for position, (name, value) in enumerate(attrs):
            if name not in _URL_ATTRIBUTES or value is None:
                continue
            tokens = table.pattern.findall(value)
            for token in tokens:
                starts = value.lstrip().startswith(token)
                url_filters[token] = f"|{URL_FILTER}(true)" if starts else f"|{URL_FILTER}"
            if not tokens and name == "href" and tag in _LINK_TAGS:
                url = value.strip()
                if is_trackable(url):
                    index = static_links.setdefault(url, len(static_links))
                    token = table.add(Slot("expr", f"{CLICK_URLS}[{index}]", line))
                    new_attrs[position] = (name, token)
        if new_attrs != attrs:
            edits.append((offset, raw, _start_tag(tag, new_attrs, raw.endswith("/>"))))

    for offset, raw, new_raw in reversed(edits):
        assert html[offset : offset + len(raw)] == raw, "start tag offset mismatch"
        html = html[:offset] + new_raw + html[offset + len(raw) :]
    return LinkScan(html=html, url_filters=url_filters, static_links=list(static_links))


def track_url_constants(tree: nodes.Template) -> Iterable[tuple[int, object]]:
    """(line, argument) of every `track_url(<constant>)` call, in document order."""
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == TRACK_URL and call.args:
            first = call.args[0]
            if isinstance(first, nodes.Const):
                yield call.lineno, first.value


def registered_links(static_links: list[str], trees: Iterable[nodes.Template]) -> list[str]:
    """The campaign's link destinations, each once (position = link index).

    The static links keep their indices; `track_url` constants of `trees` follow.
    """
    links: dict[str, None] = dict.fromkeys(static_links)
    for tree in trees:
        for _line, value in track_url_constants(tree):
            if isinstance(value, str) and is_trackable(value):
                links.setdefault(value, None)
    if len(links) > MAX_LINKS:
        raise ValueError(f"a campaign may register at most {MAX_LINKS} links")
    return list(links)


class ClickUrls:
    """The click URLs of one message, signed on first use (a link skipped costs nothing).

    Indexing gives link `i`'s URL (static links read it so); `track_url(url)` gives a
    registered URL's. Without a tracker base both give the destination itself, but
    registration is still required, so a dry run without tracking finds the same
    mistakes.
    """

    __slots__ = ("_index", "_links", "_memo", "_urls")

    def __init__(self, links: Sequence[str], index: Mapping[str, int], urls: TrackingUrls | None):
        self._links = links
        self._index = index
        self._urls = urls
        self._memo: dict[int, str] = {}

    def __getitem__(self, link_index: int) -> str:
        known = self._memo.get(link_index)
        if known is None:
            if self._urls is None:
                known = self._links[link_index]
            else:
                known = self._urls.click_url(link_index)
            self._memo[link_index] = known
        return known

    def track_url(self, url: str) -> str:
        """`track_url(url)` of the template context."""
        link_index = self._index.get(url)
        if link_index is None:
            raise UnregisteredLinkError(
                f"track_url({url!r}): not a registered link; only a constant http(s) URL"
                " written in the template can be tracked"
            )
        return self[link_index]
