"""The plain-text part, derived from the HTML (DESIGN §3) with inscriptis.

inscriptis renders HTML the way a text browser does (block layout, list bullets,
tables, `[text](url)` links) rather than as Markdown, so the text part carries no
Markdown escapes, and it reports where `<pre>`, `<table>` and `<ol>` content lands,
which the compiled text needs.

The exact path converts each rendered HTML message. The fast path converts the HTML
template once, placeholders and all, into a text layout whose slots it fills per
recipient (combined.py). For the two to agree, filling does what the converter would
have done to the values:

- on a normal line a value's whitespace collapses like HTML whitespace: such a line is
  wrapped in LINE_OPEN/LINE_CLOSE markers, and after rendering the marked part is
  collapsed and stripped (`" ".join(part.split())`, the converter's own rule). That
  pass is skipped when no printed value had whitespace to collapse (or was empty)
  and no statement stands inside a line, the common case;
- in `<pre>` a value stays as it is;
- a placeholder inside a table makes the layout depend on the data (column widths),
  and a statement inside a numbered list renumbers its items, so such templates get
  no compiled text: their text is converted from each message's HTML.

Both paths then `tidy` the text: no trailing spaces, at most one blank line in a row.
inscriptis unescapes text it already got unescaped from lxml; the parsed tree's `&`
are escaped once more before it runs, so "&lt;" in data stays "&lt;".
"""

from __future__ import annotations

import copy
import html as html_lib
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from inscriptis import Inscriptis  # type: ignore[import-untyped]
from inscriptis.css_profiles import CSS_PROFILES  # type: ignore[import-untyped]
from inscriptis.html_properties import Display  # type: ignore[import-untyped]
from inscriptis.model.config import ParserConfig  # type: ignore[import-untyped]
from inscriptis.model.html_element import HtmlElement  # type: ignore[import-untyped]
from lxml.html import document_fromstring  # type: ignore[import-untyped]
from markupsafe import Markup

from pigeon_common.render.characters import clean, normalize_newlines
from pigeon_common.render.context import TrackingPixel
from pigeon_common.render.slots import SlotTable

LINE_OPEN = "\x0e"
LINE_CLOSE = "\x0f"
_MARKED = re.compile(f"{LINE_OPEN}([^{LINE_OPEN}{LINE_CLOSE}]*){LINE_CLOSE}")
_values_need_collapse: ContextVar[list[bool]] = ContextVar("pigeon_text_collapse")
# Inline elements inherit `pre` whitespace (inscriptis gives unknown tags `normal`).
_INLINE_TAGS = (
    *("a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em"),
    *("font", "i", "ins", "kbd", "mark", "s", "samp", "small", "span", "strike", "strong"),
    *("sub", "sup", "time", "tt", "u", "var"),
)


def _css() -> dict[str, Any]:
    css = cast(dict[str, Any], copy.copy(CSS_PROFILES["strict"]))
    for tag in _INLINE_TAGS:
        element = HtmlElement(display=Display.inline)
        element.whitespace = None  # inherit from the parent, as CSS does
        css[tag] = element
    return css


_CONFIG = ParserConfig(css=_css(), display_links=True)
_ANNOTATED = ParserConfig(
    css=_css(),
    display_links=True,
    annotation_rules={"pre": ["pre"], "table": ["table"], "ol": ["ol"]},
)


def _inscriptis(html: str, config: Any) -> Any:
    """An inscriptis run over `html`, or None for an empty document."""
    if not html.strip():
        return None
    tree = document_fromstring(html)
    for element in tree.iter():
        if element.text and "&" in element.text:
            element.text = element.text.replace("&", "&amp;")
        if element.tail and "&" in element.tail:
            element.tail = element.tail.replace("&", "&amp;")
        href = element.get("href") if isinstance(element.tag, str) else None
        if href and "&" in href:
            element.set("href", href.replace("&", "&amp;"))
    return Inscriptis(tree, config)


def _single_blank_lines(text: str) -> str:
    while "\n\n\n" in text:  # str methods: far faster than a regular expression here
        text = text.replace("\n\n\n\n", "\n\n").replace("\n\n\n", "\n\n")
    return text


def tidy(text: str) -> str:
    """Normalized text: LF only, no trailing spaces, no runs of blank lines, one final LF."""
    text = "\n".join([line.rstrip() for line in normalize_newlines(text).split("\n")])
    return _single_blank_lines(text).strip("\n") + "\n"


def html_to_text(html: str) -> str:
    """The text part for an HTML body (links shown as `[text](url)`)."""
    converted = _inscriptis(html, _CONFIG)
    return tidy(converted.get_text() if converted is not None else "")


def _collapse(match: re.Match[str]) -> str:
    return " ".join(match.group(1).split())


def fill_text(rendered: str, collapse: bool = True) -> str:
    """The text part from a filled text layout: marked lines collapsed, then tidied.

    Without `collapse` (no value had whitespace to fix, no inline statement) the
    filled lines are already tidy but for blank lines left by statements.
    """
    if collapse:
        if LINE_OPEN in rendered:
            rendered = _MARKED.sub(_collapse, rendered)
        return tidy(rendered.replace(LINE_OPEN, "").replace(LINE_CLOSE, ""))
    rendered = rendered.replace(LINE_OPEN, "").replace(LINE_CLOSE, "")
    return _single_blank_lines(rendered).strip("\n") + "\n"


def collecting_whitespace(render: Callable[[], Any], always: bool) -> tuple[Any, bool]:
    """`render()`'s result, and whether a printed text value asked for the collapse pass."""
    flag = [always]
    token = _values_need_collapse.set(flag)
    try:
        result = render()
    finally:
        _values_need_collapse.reset(token)
    return result, flag[0]


def _needs_collapse() -> None:
    flag = _values_need_collapse.get(None)
    if flag is not None:
        flag[0] = True


def text_value(value: Any) -> str:
    """A value as the converter would show it in the text part."""
    if isinstance(value, TrackingPixel):
        _needs_collapse()
        return ""
    if isinstance(value, Markup):
        text = str(value)
        if "<" in text:  # real HTML: convert it on its own
            text = " ".join(html_to_text(clean(text)).split())
        else:  # escaped text (say, from `~` in an autoescaping template)
            text = html_lib.unescape(text)
        _needs_collapse()
        return normalize_newlines(clean(text))
    text = value if isinstance(value, str) else str(value)
    if not text.isprintable():  # control characters, line breaks, tabs, NBSP...
        text = normalize_newlines(clean(text))
        _needs_collapse()
    elif not text or text[0] == " " or text[-1] == " " or "  " in text:
        _needs_collapse()
    return text


def _in_spans(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


@dataclass(frozen=True)
class TextLayout:
    """The text part of an HTML template with its placeholders still in it.

    `lines` has the marked lines (see module docstring) and statement-only lines
    reduced to their placeholders; `inline_statements` says a statement stands inside
    a marked line, so the collapse pass must always run.
    """

    lines: str
    inline_statements: bool


def derive_text_layout(html: str, table: SlotTable) -> TextLayout | None:
    """The text layout of an HTML template with placeholders, or None when unsafe.

    None when a placeholder lands in a table, a statement in a numbered list, or when
    the converter dropped part of a statement (say, a `{% if %}` inside an attribute
    it does not show) so the text would not have the HTML's structure.
    """
    converted = _inscriptis(html, _ANNOTATED)
    text: str = converted.get_text() if converted is not None else ""
    spans: dict[str, list[tuple[int, int]]] = {"pre": [], "table": [], "ol": []}
    for annotation in converted.get_annotations() if converted is not None else []:
        spans.setdefault(annotation.metadata, []).append((annotation.start, annotation.end))

    found = list(table.pattern.finditer(text))
    if any(_in_spans(m.start(), spans["table"]) for m in found):
        return None
    if any(_in_spans(m.start(), spans["ol"]) for m in found if table.is_statement(m.group())):
        return None
    statements = [token for token, slot in table.slots.items() if slot.kind == "stmt"]
    if sorted(m.group() for m in found if table.is_statement(m.group())) != sorted(statements):
        return None

    lines: list[str] = []
    pending = ""  # statement-only lines vanish, newline and all: their tags lead the next line
    inline_statements = False
    offset = 0
    for full_line in text.split("\n"):
        start, offset = offset, offset + len(full_line) + 1
        line = full_line.rstrip()  # what tidy would strip; the fast fill relies on it
        tokens = [m.group() for m in table.pattern.finditer(line)]
        if tokens and not _in_spans(start + line.find(tokens[0]), spans["pre"]):
            if all(map(table.is_statement, tokens)) and not table.pattern.sub("", line).strip():
                pending += "".join(tokens)
                continue
            line = _without_invisible(line, tokens, table)
            indent = line[: len(line) - len(line.lstrip())]
            if line.strip():
                line = f"{indent}{LINE_OPEN}{line.strip()}{LINE_CLOSE}"
            inline_statements |= any(map(table.is_statement, tokens))
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return TextLayout("\n".join(lines), inline_statements)


def _without_invisible(line: str, tokens: list[str], table: SlotTable) -> str:
    """The line without the tracking pixel (never visible as text), re-spaced."""
    for token in tokens:
        if table.slots[token].source == "tracking_pixel":
            indent = line[: len(line) - len(line.lstrip())]
            line = indent + " ".join(line.replace(token, " ").split())
    return line
