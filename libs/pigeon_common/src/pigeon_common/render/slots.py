"""Personalization slots: a template's Jinja tags swapped for opaque placeholders, and back.

Markdown is converted BEFORE personalization (DESIGN §3). Each `{{ ... }}` and
`{% ... %}` of the source becomes a placeholder such as `xqkzvtmwp00007`: letters and
digits only, so Markdown passes it through untouched wherever it stands. After the
conversion each placeholder is put back as a Jinja tag of the compiled template, which
uses control-character delimiters: nothing the Markdown produced (literal `{{` from a
`{% raw %}` block included) can be read as Jinja, and a recipient's value is printed as
text, never read as Markdown.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Literal

from jinja2 import Environment

# Delimiters of the compiled (derived) HTML and text templates.
DERIVED_DELIMITERS = {
    "variable_start_string": "\x01{",
    "variable_end_string": "}\x01",
    "block_start_string": "\x02%",
    "block_end_string": "%\x02",
    "comment_start_string": "\x03#",
    "comment_end_string": "#\x03",
}
_VARIABLE_START = DERIVED_DELIMITERS["variable_start_string"]
_VARIABLE_END = DERIVED_DELIMITERS["variable_end_string"]
_BLOCK_START = DERIVED_DELIMITERS["block_start_string"]
_BLOCK_END = DERIVED_DELIMITERS["block_end_string"]
MAX_SLOTS = 99_999
_SALT_LETTERS = string.ascii_lowercase


class TooManySlotsError(ValueError):
    """Raised when a template has more tags than placeholders can number."""


@dataclass(frozen=True)
class Slot:
    """One Jinja tag: an expression (`{{ }}`) or a statement (`{% %}`).

    `source` is the text between the delimiters (whitespace control already applied to
    the surrounding text by the lexer); `line` is its line in the author's template.
    """

    kind: Literal["expr", "stmt"]
    source: str
    line: int


class SlotTable:
    """Mints placeholders unique to one template and remembers what each stands for."""

    def __init__(self, source: str) -> None:
        lowered = source.lower()
        while True:
            salt = "x" + "".join(secrets.choice(_SALT_LETTERS) for _ in range(8))
            if salt not in lowered:
                break
        self._salt = salt
        self.pattern = re.compile(salt + r"\d{5}")
        self.slots: dict[str, Slot] = {}

    def add(self, slot: Slot) -> str:
        """A new placeholder standing for `slot`."""
        if len(self.slots) >= MAX_SLOTS:
            raise TooManySlotsError(f"a template may hold at most {MAX_SLOTS} Jinja tags")
        token = f"{self._salt}{len(self.slots):05d}"
        self.slots[token] = slot
        return token

    def is_statement(self, token: str) -> bool:
        return self.slots[token].kind == "stmt"

    def tag(self, token: str, filters: str = "") -> str:
        """The compiled-template tag for a placeholder; `filters` is appended to expressions."""
        slot = self.slots[token]
        if slot.kind == "stmt":
            return self.statement_tag(slot.source)
        return self.expression_tag(f"({slot.source}){filters}")

    @staticmethod
    def statement_tag(source: str) -> str:
        """`{% source %}` in the compiled templates' delimiters."""
        return f"{_BLOCK_START} {source} {_BLOCK_END}"

    @staticmethod
    def expression_tag(source: str) -> str:
        """`{{ source }}` in the compiled templates' delimiters."""
        return f"{_VARIABLE_START} {source} {_VARIABLE_END}"

    def restore(self, text: str, filters: dict[str, str]) -> str:
        """`text` with every placeholder replaced by its tag (`filters` per placeholder)."""
        return self.pattern.sub(lambda m: self.tag(m.group(), filters.get(m.group(), "")), text)


def split_source(source: str, env: Environment, table: SlotTable) -> str:
    """The template's text (Markdown) with each Jinja tag replaced by a placeholder.

    Uses Jinja's own lexer, so strings containing `}}`, whitespace control (`{{-`),
    comments and `{% raw %}` blocks are read exactly as Jinja reads them.
    """
    parts: list[str] = []
    kind: Literal["expr", "stmt"] | None = None
    inner: list[str] = []
    line = 0
    for lineno, lexeme, value in env.lexer.tokeniter(source, None):
        if lexeme in ("variable_begin", "block_begin"):
            kind = "expr" if lexeme == "variable_begin" else "stmt"
            inner, line = [], lineno
        elif lexeme in ("variable_end", "block_end") and kind is not None:
            parts.append(table.add(Slot(kind, "".join(inner).strip(), line)))
            kind = None
        elif kind is not None:
            inner.append(value)
        elif lexeme == "data":
            parts.append(value)
    return "".join(parts)
