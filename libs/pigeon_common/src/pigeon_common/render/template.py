"""What a campaign's templates mean, compiled once: the pipeline of DESIGN §3.

Both render paths start here, so they cannot differ in meaning:

1. the sources are cleaned (characters.py) and parsed; syntax errors, private
   attributes, `include`/`import` and non-http(s) `track_url` constants are refused
   with their line;
2. the Markdown's Jinja tags become placeholders (slots.py), the Markdown becomes HTML
   (markdown.py), statements on their own line leave their paragraph;
3. the HTML is wrapped into a document, with the unsubscribe footer unless the
   template uses `unsubscribe_url` and the pixel unless it uses `open_url` or
   `tracking_pixel` (both only with a tracker base);
4. static http(s) links become `track_url` slots and URL-context slots get `safe_url`
   (links.py);
5. the placeholders become tags of the compiled HTML template (HTML-escaping); the
   text layout is derived from the same HTML (text.py) and, where it can be, joined
   with the HTML into one combined template for the fast path (combined.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, nodes
from jinja2.exceptions import TemplateSyntaxError

from pigeon_common.render.characters import clean, finalize_value, normalize_newlines
from pigeon_common.render.combined import TEXT_FILTER, CombinedTemplate, combine
from pigeon_common.render.errors import TemplateError, TemplateField
from pigeon_common.render.links import (
    URL_FILTER,
    is_trackable,
    registered_links,
    safe_url,
    scan_links,
    track_url_constants,
)
from pigeon_common.render.markdown import (
    hoist_statements,
    loops_into_lists,
    markdown_to_html,
    separate_statement_lines,
)
from pigeon_common.render.sandbox import (
    CampaignSandbox,
    describe,
    error_line,
    render_limited,
    static_problem,
)
from pigeon_common.render.slots import (
    DERIVED_DELIMITERS,
    Slot,
    SlotTable,
    TooManySlotsError,
    split_source,
)
from pigeon_common.render.text import derive_text_layout, text_value

MAX_TEMPLATE_CHARS = 1_000_000

SOURCE_ENV = CampaignSandbox(autoescape=False, finalize=finalize_value)
HTML_ENV = CampaignSandbox(
    autoescape=True,
    finalize=finalize_value,
    delimiters=DERIVED_DELIMITERS,
    filters={URL_FILTER: safe_url, TEXT_FILTER: text_value},
)

_DOCUMENT_HEAD = (
    "<!DOCTYPE html>\n<html>\n<head>\n"
    '<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    "</head>\n<body>\n"
)
_DOCUMENT_TAIL = "</body>\n</html>\n"
_FOOTER = (
    '<p style="font-size:12px;line-height:1.5;color:#777777;margin-top:24px">'
    'Don&#39;t want these emails? <a href="{token}">Unsubscribe</a>.</p>\n'
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass(frozen=True)
class CampaignTemplates:
    """The compiled-template sources of one campaign.

    `combined` renders HTML and text together (fast path); it is None when the text
    part has to be converted from each message's HTML. `body` is the cleaned Markdown
    source, kept to locate the line of a runtime error.
    """

    subject: str
    body: str
    html: str
    combined: CombinedTemplate | None
    links: tuple[str, ...]


def parse_source(source: str, field: TemplateField) -> nodes.Template:
    """The syntax tree of an author's template, or TemplateError saying what is refused."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(field, f"template longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        tree = SOURCE_ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(field, exc.message or "syntax error", exc.lineno) from None
    problem = static_problem(tree)
    if problem is not None:
        raise TemplateError(field, problem[1], problem[0])
    for line, value in track_url_constants(tree):
        if not (isinstance(value, str) and is_trackable(value)):
            raise TemplateError(field, f"track_url needs an absolute http(s) URL: {value!r}", line)
    return tree


def _wrap_document(fragment: str, extra: str) -> str:
    """A whole HTML document around the fragment, `extra` at the end of its body."""
    ends = list(_BODY_END.finditer(fragment))
    if ends:
        cut = ends[-1].start()
        return fragment[:cut] + extra + fragment[cut:]
    return _DOCUMENT_HEAD + fragment + extra + _DOCUMENT_TAIL


def prepare(
    subject: str, markdown: str, tracking: bool, combined: bool = True
) -> CampaignTemplates:
    """Compile-time work for a campaign's subject and body (see module docstring).

    `combined=False` skips the fast path's combined template (the exact path has none).
    """
    subject = clean(subject)
    body = normalize_newlines(clean(markdown))
    subject_tree = parse_source(subject, "subject")
    body_tree = parse_source(body, "template_markdown")
    names = {name.name for name in body_tree.find_all(nodes.Name) if name.ctx == "load"}

    table = SlotTable(body)
    try:
        markdown = separate_statement_lines(split_source(body, SOURCE_ENV, table), table)
        fragment = loops_into_lists(hoist_statements(markdown_to_html(markdown), table), table)
    except TooManySlotsError as exc:
        raise TemplateError("template_markdown", str(exc)) from None
    extra = ""
    if tracking and "unsubscribe_url" not in names:
        extra += _FOOTER.format(token=table.add(Slot("expr", "unsubscribe_url", 0)))
    if tracking and not names & {"open_url", "tracking_pixel"}:
        extra += table.add(Slot("expr", "tracking_pixel", 0)) + "\n"
    scan = scan_links(_wrap_document(fragment, extra), table)

    html = table.restore(scan.html, scan.url_filters)
    try:
        html_tree = HTML_ENV.parse(html)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            "template_markdown",
            f"a Jinja block does not fit the Markdown around it ({exc.message});"
            " write block tags on lines of their own",
        ) from None
    joined = None
    layout = derive_text_layout(scan.html, table) if combined else None
    if layout is not None:
        joined = combine(scan.html, layout, table, scan.url_filters, body_tree)
    if joined is not None:
        try:
            HTML_ENV.parse(joined.source)
        except TemplateSyntaxError:
            joined = None
    try:
        links = registered_links(scan.static_links, [html_tree, subject_tree])
    except ValueError as exc:
        raise TemplateError("template_markdown", str(exc)) from None
    return CampaignTemplates(
        subject=subject, body=body, html=html, combined=joined, links=tuple(links)
    )


def render_field(
    template: Template,
    context: dict[str, Any],
    deadline: float,
    field: TemplateField,
    source: str | None = None,
) -> str:
    """Render one template; any failure becomes a TemplateError naming field and line.

    `source` is the author's template when `template` was derived from it (the body):
    the line is then found by rendering the source itself, which meets the same
    problem at its real line.
    """
    try:
        return render_limited(template, context, deadline)
    except Exception as exc:
        line = error_line(exc, template) if source is None else _locate(source, context, deadline)
        raise TemplateError(field, describe(exc), line) from None


def _locate(source: str, context: dict[str, Any], deadline: float) -> int | None:
    template = SOURCE_ENV.from_string(source)
    try:
        render_limited(template, context, deadline)
    except Exception as exc:
        return error_line(exc, template)
    return None
