"""Reading admin forms: the REST request models check the values (one set of rules for
both surfaces), and their refusals become messages next to each field.

Pure: a form's fields in, a model or per-field messages out; no HTTP, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pigeon_common.domain.errors import RuleError

M = TypeVar("M", bound=BaseModel)
GENERAL = ""  # the key of a message that belongs to no one field


@dataclass
class FormErrors:
    """Messages by field name ("smtp.host"); GENERAL for the form as a whole."""

    by_field: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_field)

    def get(self, name: str) -> str | None:
        return self.by_field.get(name)

    @property
    def general(self) -> str | None:
        return self.by_field.get(GENERAL)

    def add(self, name: str | None, message: str) -> None:
        self.by_field.setdefault(name or GENERAL, message)


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def validation_errors(exc: ValidationError) -> FormErrors:
    errors = FormErrors()
    for error in exc.errors():
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.add(_field_name(tuple(error.get("loc", ()))), message)
    return errors


def rule_errors(exc: RuleError) -> FormErrors:
    """A command's refusal, shown next to the field it names (its message may start with
    "field: ", which the field's label already says)."""
    errors = FormErrors()
    message = exc.message
    if exc.field and message.startswith(f"{exc.field}: "):
        message = message[len(exc.field) + 2 :]
    errors.add(exc.field, message)
    return errors


def parse_model(model: type[M], values: dict[str, Any]) -> tuple[M | None, FormErrors]:
    try:
        return model.model_validate(values), FormErrors()
    except ValidationError as exc:
        return None, validation_errors(exc)


def text(form: dict[str, str], name: str) -> str:
    return form.get(name, "").strip()


def optional_text(form: dict[str, str], name: str) -> str | None:
    return text(form, name) or None


def optional_int(form: dict[str, str], name: str) -> int | str | None:
    """An integer field: None when blank, the text itself when it is no integer (so the
    model's check names it)."""
    value = text(form, name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def attributes(value: str) -> dict[str, str] | str:
    """`key=value` lines as a dict, or a message naming the first bad line."""
    result: dict[str, str] = {}
    for number, line in enumerate(value.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, item = line.partition("=")
        if not sep or not key.strip():
            return f"line {number}: write key=value"
        result[key.strip()] = item.strip()
    return result
