"""Named SQL queries: parsed from `.sql` files, so a typo fails at start-up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pigeon_common.queries import Queries, QueryFileError, parse_queries

ROOT = Path(__file__).resolve().parents[2]
API_SOURCES = ROOT / "services" / "api" / "src" / "pigeon_api"
PROJECTOR_SOURCES = ROOT / "services" / "projector" / "src" / "pigeon_projector"
SENDER_SOURCES = ROOT / "services" / "sender" / "src" / "pigeon_sender"
TRACKER_SOURCES = ROOT / "services" / "tracker" / "src" / "pigeon_tracker"
IMAP_SYNC_SOURCES = ROOT / "services" / "imap-sync" / "src" / "pigeon_imap_sync"
# Every query file that ships, with the sources that use it.
QUERY_FILES = [
    ("pigeon_projector", "projection.sql", PROJECTOR_SOURCES),
    ("pigeon_api", "queries.sql", API_SOURCES),
    ("pigeon_sender", "queries.sql", SENDER_SOURCES),
    ("pigeon_tracker", "queries.sql", TRACKER_SOURCES),
    ("pigeon_imap_sync", "queries.sql", IMAP_SYNC_SOURCES),
]

SAMPLE = """-- Header comment of the file, before any query.

-- name: create-campaign
-- Insert a draft campaign.
INSERT INTO campaigns (id, name)
VALUES ($1, $2);

-- name: campaign_by_id
SELECT *
  -- an indented comment line
FROM campaigns WHERE id = $1;
--name:count-all
SELECT count(*) FROM campaigns
"""


def test_names_and_bodies() -> None:
    queries = parse_queries(SAMPLE)
    assert queries == {
        "create_campaign": "INSERT INTO campaigns (id, name)\nVALUES ($1, $2)",
        "campaign_by_id": "SELECT *\nFROM campaigns WHERE id = $1",
        "count_all": "SELECT count(*) FROM campaigns",
    }


def test_order_is_kept() -> None:
    assert list(parse_queries(SAMPLE)) == ["create_campaign", "campaign_by_id", "count_all"]


def test_comment_lines_are_stripped() -> None:
    for sql in parse_queries(SAMPLE).values():
        assert "--" not in sql
        assert not sql.endswith(";")


def test_duplicate_name_is_an_error() -> None:
    with pytest.raises(QueryFileError, match="twice"):
        parse_queries("-- name: a\nSELECT 1;\n-- name: b\nSELECT 2;\n-- name: a\nSELECT 3;\n")


def test_dash_and_underscore_spellings_are_the_same_name() -> None:
    with pytest.raises(QueryFileError, match="twice"):
        parse_queries("-- name: user-by-id\nSELECT 1;\n-- name: user_by_id\nSELECT 2;\n")


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "-- just a comment\nSELECT 1;\n", "-- Name: upper-case\nSELECT 1;\n"],
)
def test_file_without_a_named_query_is_an_error(text: str) -> None:
    with pytest.raises(QueryFileError):
        parse_queries(text)


def test_attribute_access() -> None:
    queries = Queries(parse_queries(SAMPLE))
    assert queries.count_all == "SELECT count(*) FROM campaigns"
    assert ("count_all", "SELECT count(*) FROM campaigns") in queries.items()
    with pytest.raises(AttributeError):
        _ = queries.no_such_query


@pytest.mark.parametrize(("package", "filename"), [(p, f) for p, f, _ in QUERY_FILES])
def test_shipped_query_files_parse(package: str, filename: str) -> None:
    queries = Queries.from_package(package, filename)
    assert queries.items()
    for name, sql in queries.items():
        assert re.fullmatch(r"[a-z0-9_]+", name)
        assert sql.strip(), f"{filename}: {name} has no SQL"
        assert not any(line.lstrip().startswith("--") for line in sql.splitlines())


def _used_names(sources: Path) -> set[str]:
    """Names used as `SQL.<name>` in a package's Python files (`SQL` is its query file)."""
    used: set[str] = set()
    for path in sources.rglob("*.py"):
        used |= set(re.findall(r"\bSQL\.([a-z][a-z0-9_]*)\b", path.read_text(encoding="utf-8")))
    return used - {"items", "prepare_all"}


@pytest.mark.parametrize(("package", "filename", "sources"), QUERY_FILES)
def test_every_query_the_code_uses_exists(package: str, filename: str, sources: Path) -> None:
    defined = {name for name, _ in Queries.from_package(package, filename).items()}
    used = _used_names(sources)
    assert used, "no SQL.<name> use found: the search is broken"
    assert used <= defined, f"{filename} lacks {sorted(used - defined)}"


@pytest.mark.parametrize(("package", "filename", "sources"), QUERY_FILES)
def test_every_query_a_file_defines_is_used(package: str, filename: str, sources: Path) -> None:
    defined = {name for name, _ in Queries.from_package(package, filename).items()}
    unused = defined - _used_names(sources)
    assert not unused, f"{filename}: {sorted(unused)} used nowhere"
