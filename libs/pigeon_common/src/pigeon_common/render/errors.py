"""The one error a campaign template can cause, with the facts an author needs to fix it."""

from __future__ import annotations

from typing import Literal

TemplateField = Literal["subject", "template_markdown"]


class TemplateError(ValueError):
    """Raised when a campaign template cannot be compiled or rendered.

    Fires for Jinja syntax errors (at compile time), for what the sandbox refuses
    (private attributes, oversized ranges, numbers or output, too much time) and for
    undefined variables (at render or dry-run time). `field` names the template,
    `line` is 1-based in that template when known, `message` says what is wrong, and
    `recipient` is the address being rendered when the problem depends on the data.
    """

    def __init__(
        self,
        field: TemplateField,
        message: str,
        line: int | None = None,
        recipient: str | None = None,
    ) -> None:
        self.field: TemplateField = field
        self.message = message
        self.line = line
        self.recipient = recipient
        where = f"{field} line {line}" if line else field
        for_whom = f" (recipient {recipient})" if recipient else ""
        super().__init__(f"{where}: {message}{for_whom}")

    def for_recipient(self, recipient: str) -> TemplateError:
        """The same problem, naming the recipient whose data showed it."""
        return TemplateError(self.field, self.message, self.line, recipient)
