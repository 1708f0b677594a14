"""One compiled template that renders a message's HTML and its text part in one pass.

The text layout (text.py) has the HTML's statements in the HTML's order, so one Jinja
template can produce both: for each stretch between two statements it prints the
HTML of the stretch, a TEXT_START mark, the text of the stretch and a SEGMENT_END
mark. Each expression is evaluated once (`{% set %}`) and printed into both parts,
HTML-escaped in one and, inside `{% autoescape false %}`, as the converter would show
it in the other (`pigeon_text`), just as the exact path evaluates it once and
converts the HTML. After rendering, the
output is split at the marks; loops and conditions repeat or skip whole stretches,
so the marks always pair up.

Templates that capture output (`{% macro %}`, `{% call %}`, `{% filter %}`, block
`{% set %}`) would capture marks as well; they get no combined template, and their
text is converted from each message's HTML.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import nodes

from pigeon_common.render.slots import SlotTable
from pigeon_common.render.text import TextLayout

TEXT_START = "\x10"
SEGMENT_END = "\x11"
TEXT_FILTER = "pigeon_text"
_CAPTURING = (nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock)


@dataclass(frozen=True)
class CombinedTemplate:
    """The combined template's source, and whether its text always needs the collapse pass."""

    source: str
    inline_statements: bool


def _segments(text: str, table: SlotTable) -> tuple[list[str], list[str]]:
    """`text` cut at statement placeholders: the stretches, and the statements between."""
    stretches: list[str] = []
    statements: list[str] = []
    start = 0
    for match in table.pattern.finditer(text):
        if table.is_statement(match.group()):
            stretches.append(text[start : match.start()])
            statements.append(match.group())
            start = match.end()
    stretches.append(text[start:])
    return stretches, statements


def combine(
    html: str,
    layout: TextLayout,
    table: SlotTable,
    url_filters: dict[str, str],
    tree: nodes.Template,
) -> CombinedTemplate | None:
    """The combined template, or None when the template cannot have one (see above)."""
    if next(tree.find_all(_CAPTURING), None) is not None:
        return None
    html_stretches, html_statements = _segments(html, table)
    text_stretches, text_statements = _segments(layout.lines, table)
    if html_statements != text_statements:
        return None

    def variable(token: str) -> str:
        return f"pigeon_v{int(token[-5:])}{url_filters.get(token, '')}"

    parts: list[str] = []
    for index, (html_part, text_part) in enumerate(
        zip(html_stretches, text_stretches, strict=True)
    ):
        expressions = dict.fromkeys(table.pattern.findall(html_part))
        if not set(table.pattern.findall(text_part)) <= expressions.keys():
            return None
        for token in expressions:
            parts.append(
                table.statement_tag(
                    f"set pigeon_v{int(token[-5:])} = ({table.slots[token].source})"
                )
            )
        parts.append(
            table.pattern.sub(lambda m: table.expression_tag(variable(m.group())), html_part)
        )
        parts.append(TEXT_START)
        if expressions:  # text needs no escaping: spare its values Markup and escape()
            parts.append(table.statement_tag("autoescape false"))
        parts.append(
            table.pattern.sub(
                lambda m: table.expression_tag(f"{variable(m.group())}|{TEXT_FILTER}"), text_part
            )
        )
        if expressions:
            parts.append(table.statement_tag("endautoescape"))
        parts.append(SEGMENT_END)
        if index < len(html_statements):
            parts.append(table.tag(html_statements[index]))
    return CombinedTemplate("".join(parts), layout.inline_statements)


def split_output(output: str) -> tuple[str, str]:
    """The rendered HTML and text layout out of a combined template's output."""
    html: list[str] = []
    text: list[str] = []
    for piece in output.split(SEGMENT_END):
        html_part, _, text_part = piece.partition(TEXT_START)
        html.append(html_part)
        text.append(text_part)
    return "".join(html), "".join(text)
