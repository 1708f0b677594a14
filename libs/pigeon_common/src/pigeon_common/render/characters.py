"""Which characters may travel from a template or its data into a message.

Control characters other than tab and line breaks have no meaning in an email body,
and lone surrogates (possible in decoded JSON) cannot be encoded as UTF-8; both become
U+FFFD, in the template source and in every value a template prints. The delimiters of
the compiled templates and the text part's line markers are control characters, so
this is also what keeps them from ever appearing in static text or data.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup

_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def clean(text: str) -> str:
    """`text` with unsafe control characters and lone surrogates replaced by U+FFFD."""
    if text.isprintable() or not _UNSAFE.search(text):  # isprintable: the cheap common case
        return text
    return _UNSAFE.sub("\ufffd", text)


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR as LF, the form bodies are kept in until MIME encoding."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def as_body(text: str) -> str:
    """A body as both paths encode it: LF line endings and a final LF."""
    text = normalize_newlines(text)
    return text if text.endswith("\n") else text + "\n"


def finalize_value(value: Any) -> Any:
    """Jinja `finalize` for HTML and subjects: every printed string passes `clean`."""
    if isinstance(value, str) and not value.isprintable() and _UNSAFE.search(value):
        cleaned = _UNSAFE.sub("\ufffd", value)
        # Markup stays Markup: it was markup before, only control characters changed.
        return Markup(cleaned) if isinstance(value, Markup) else cleaned  # noqa: S704
    return value
