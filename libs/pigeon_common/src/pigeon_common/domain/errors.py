"""Typed rule errors: what a command refuses and why, with no transport in it.

Each surface translates `kind` once (REST: not_found→404, forbidden→403, conflict→409,
invalid→422); `code` is the stable machine word, `field` names the input at fault.
"""

from __future__ import annotations

from typing import ClassVar, Literal

ErrorKind = Literal["not_found", "forbidden", "conflict", "invalid"]


class RuleError(Exception):
    """A command was refused by a domain rule."""

    kind: ClassVar[ErrorKind]

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class NotFound(RuleError):
    """The resource does not exist, or the actor may not know that it does."""

    kind = "not_found"

    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"{what} not found")
        self.what = what


class Forbidden(RuleError):
    """The actor sees the resource but may not do this (role or token scope)."""

    kind = "forbidden"

    def __init__(self, message: str, code: str = "forbidden") -> None:
        super().__init__(code, message)


class Conflict(RuleError):
    """The resource's current state does not allow the command (say, a sending campaign
    cannot be edited)."""

    kind = "conflict"


class Invalid(RuleError):
    """The command's input breaks a rule no schema can check alone."""

    kind = "invalid"
