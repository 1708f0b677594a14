"""The docs are the catalogs: every event and every setting is documented, and described."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from pigeon_cli.settings import SERVICE_SETTINGS, AllSettings, read_by
from pigeon_common.events import CATALOG, EVENT_SUBJECT_PREFIX
from pigeon_common.settings import ENV_PREFIX, ProcessSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"
EVENTS_DOC = DOCS / "events.md"
CONFIG_DOC = DOCS / "configuration.md"
# The README carries the same reference table; both are held to the settings.
CONFIG_DOCS = [CONFIG_DOC, DOCS.parent / "README.md"]


def _words(text: str) -> str:
    """Text with whitespace runs collapsed and backticks dropped, for comparing prose."""
    return " ".join(text.replace("`", "").split())


def _sections(markdown: str) -> dict[str, str]:
    """`## heading` -> the text up to the next `## ` heading."""
    parts = re.split(r"^## (.+?)\s*$", markdown, flags=re.MULTILINE)
    return {title: body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def _docstring(cls: type) -> str:
    # The class's own docstring, not one inherited from a base class.
    return inspect.cleandoc(cls.__dict__.get("__doc__") or "")


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_every_event_has_a_docstring(event_type: str) -> None:
    assert _docstring(CATALOG[event_type]), f"{CATALOG[event_type].__name__} has no docstring"


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_every_event_is_documented(event_type: str) -> None:
    sections = _sections(EVENTS_DOC.read_text(encoding="utf-8"))
    assert event_type in sections, f"docs/events.md has no `## {event_type}` section"
    section = sections[event_type]
    cls = CATALOG[event_type]
    assert f"`{EVENT_SUBJECT_PREFIX}.{event_type}`" in section
    assert re.search(rf"schema_version: {cls.schema_version}\b", section)
    assert _words(_docstring(cls)) in _words(section), "the description is not the docstring"
    for field in cls.model_fields:
        assert f"| `{field}` |" in section, f"{event_type}: payload field {field} undocumented"


def test_events_doc_names_no_unknown_event() -> None:
    sections = _sections(EVENTS_DOC.read_text(encoding="utf-8"))
    documented = {title for title in sections if re.fullmatch(r"[a-z_]+\.[a-z_]+", title)}
    assert documented == set(CATALOG)


def test_events_doc_describes_the_envelope() -> None:
    text = EVENTS_DOC.read_text(encoding="utf-8")
    for field in (
        "event_id",
        "type",
        "schema_version",
        "occurred_at",
        "aggregate_id",
        "causation_id",
        "actor",
        "data",
    ):
        assert f"| `{field}` |" in text
    assert "Nats-Msg-Id" in text


# Every settings class: each service's, and the CLI's view of all of them.
SETTINGS_CLASSES = [*SERVICE_SETTINGS.values(), AllSettings]
SETTING_FIELDS = sorted({name for cls in SETTINGS_CLASSES for name in cls.model_fields})


@pytest.mark.parametrize(
    ("cls", "name"),
    [(cls, name) for cls in SETTINGS_CLASSES for name in cls.model_fields],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_every_setting_has_a_description(cls: type[ProcessSettings], name: str) -> None:
    description = cls.model_fields[name].description
    assert description and description.strip(), f"{cls.__name__}.{name} has no description"


def _table_rows(doc: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The configuration table's header cells, and each variable's row cells."""
    header: list[str] = []
    rows: dict[str, list[str]] = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if cells and cells[0].lower() == "variable":
            header = [cell.lower() for cell in cells]
        match = re.fullmatch(r"`(PIGEON_[A-Z0-9_]+)`", cells[0]) if cells else None
        if match:
            assert match[1] not in rows, f"{doc.name} has two rows for {match[1]}"
            rows[match[1]] = cells
    return header, rows


@pytest.mark.parametrize("doc", CONFIG_DOCS, ids=lambda p: p.name)
@pytest.mark.parametrize("name", SETTING_FIELDS)
def test_every_setting_is_documented(name: str, doc: Path) -> None:
    variable = f"{ENV_PREFIX}{name.upper()}"
    header, rows = _table_rows(doc)
    assert variable in rows, f"{doc.name} needs one table row for {variable}"
    row = rows[variable]
    description = AllSettings.model_fields[name].description or ""
    assert _words(description) in _words(" | ".join(row)), f"{variable}: description differs"
    assert row[header.index("read by")] == read_by(name), f"{variable}: read by differs"


@pytest.mark.parametrize("doc", CONFIG_DOCS, ids=lambda p: p.name)
def test_configuration_doc_names_no_unknown_variable(doc: Path) -> None:
    _, rows = _table_rows(doc)
    assert set(rows) == {f"{ENV_PREFIX}{name.upper()}" for name in SETTING_FIELDS}
