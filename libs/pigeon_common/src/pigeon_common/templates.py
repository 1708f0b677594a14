"""Template checks done when a campaign is saved (rendering itself lives with the sender)."""

from __future__ import annotations

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment(autoescape=False)


class TemplateProblem(ValueError):
    """A template that cannot be parsed; `line` is 1-based."""

    def __init__(self, line: int | None, message: str) -> None:
        where = f"line {line}: " if line else ""
        super().__init__(f"{where}{message}")
        self.line = line


def check_syntax(source: str) -> None:
    """Raise TemplateProblem when the Jinja2 syntax of `source` is broken."""
    try:
        _env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.lineno, exc.message or "syntax error") from None
