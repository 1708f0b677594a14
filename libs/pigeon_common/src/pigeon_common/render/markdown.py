"""Markdown to HTML for campaign bodies (markdown-it-py: CommonMark + tables + strikethrough).

Raw HTML is allowed: the author of the Markdown is trusted with the layout; the
recipients' data never reaches this step (see slots.py).

Jinja statements (`{% if %}`, `{% for %}`, ...) and Markdown blocks:

- a statement alone on its line separates blocks, as a blank line would (and as in
  Jekyll, where such a line leaves an empty line behind), so `{% if %}` ... `{% endif %}`
  on their own lines wrap whole paragraphs, lists or headings; written inside a line
  it stays inline (`Hello {% if vip %}dear {% endif %}friend`);
- a statement left alone in a paragraph, or on its own line at a paragraph's edge, is
  moved out of the `<p>`, so no empty paragraph is left behind;
- a list wrapped by `{% for %}` ... `{% endfor %}` gets the loop inside it, so the
  loop repeats list items rather than whole lists.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from pigeon_common.render.slots import SlotTable

_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_PARAGRAPH = re.compile(r"<p>(.*?)</p>\n?", re.DOTALL)
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_LIST_OPEN = re.compile(r"<(ul|ol)[ >]")


def markdown_to_html(text: str) -> str:
    """The HTML fragment of a Markdown text."""
    return str(_MARKDOWN.render(text))


def _only_statements(line: str, table: SlotTable) -> bool:
    tokens = table.pattern.findall(line)
    return (
        bool(tokens)
        and all(table.is_statement(token) for token in tokens)
        and not table.pattern.sub("", line).strip()
    )


def separate_statement_lines(text: str, table: SlotTable) -> str:
    """Blank lines around each line that holds only statements (outside code fences)."""
    lines: list[str] = []
    fence = ""
    for line in text.split("\n"):
        opening = _FENCE.match(line)
        if opening and (not fence or opening.group(1).startswith(fence)):
            fence = "" if fence else opening.group(1)[0] * 3
            lines.append(line)
        elif not fence and _only_statements(line, table):
            indent = len(line) - len(line.lstrip())
            lines.extend(("", line if indent < 4 else line.strip(), ""))
        else:
            lines.append(line)
    return "\n".join(lines)


def _statement_source(line: str, table: SlotTable) -> str:
    tokens = table.pattern.findall(line)
    return table.slots[tokens[0]].source if len(tokens) == 1 else ""


def loops_into_lists(html: str, table: SlotTable) -> str:
    """`{% for %}<ul>...</ul>{% endfor %}` becomes `<ul>{% for %}...{% endfor %}</ul>`."""
    lines = html.split("\n")
    index = 0
    while index < len(lines) - 3:
        if (
            _only_statements(lines[index], table)
            and _statement_source(lines[index], table).startswith("for ")
            and _LIST_OPEN.match(lines[index + 1])
        ):
            depth, end = 0, index + 1
            while end < len(lines):
                depth += len(_LIST_OPEN.findall(lines[end]))
                depth -= lines[end].count("</ul>") + lines[end].count("</ol>")
                if depth <= 0:
                    break
                end += 1
            closing = end + 1
            if (
                depth == 0
                and lines[end] in ("</ul>", "</ol>")
                and closing < len(lines)
                and _only_statements(lines[closing], table)
                and _statement_source(lines[closing], table) == "endfor"
            ):
                lines[index], lines[index + 1] = lines[index + 1], lines[index]
                lines[end], lines[closing] = lines[closing], lines[end]
                index = closing
        index += 1
    return "\n".join(lines)


def hoist_statements(html: str, table: SlotTable) -> str:
    """Move statement placeholders on their own line at a paragraph's edge out of it."""

    def hoist(match: re.Match[str]) -> str:
        lines = match.group(1).split("\n")
        before: list[str] = []
        after: list[str] = []
        while lines and _only_statements(lines[0], table):
            before.append(lines.pop(0).strip())
        while lines and _only_statements(lines[-1], table):
            after.insert(0, lines.pop().strip())
        if not before and not after:
            return match.group(0)
        paragraph = ["<p>" + "\n".join(lines) + "</p>"] if lines else []
        return "\n".join([*before, *paragraph, *after]) + "\n"

    return _PARAGRAPH.sub(hoist, html)
