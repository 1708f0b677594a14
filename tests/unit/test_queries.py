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
COMMON_SOURCES = ROOT / "libs" / "pigeon_common" / "src" / "pigeon_common"
# Every query file that ships, with the sources that use it and the name they use it by.
QUERY_FILES = [
    ("pigeon_common", "queries.sql", COMMON_SOURCES, "SQL"),
    ("pigeon_projector", "projection.sql", PROJECTOR_SOURCES, "SQL"),
    ("pigeon_projector", "message_states.sql", PROJECTOR_SOURCES, "STATES_SQL"),
    ("pigeon_projector", "checkpoint.sql", PROJECTOR_SOURCES, "CHECKPOINT_SQL"),
    ("pigeon_projector", "rebuild.sql", PROJECTOR_SOURCES, "REBUILD_SQL"),
    ("pigeon_api", "queries.sql", API_SOURCES, "SQL"),
    ("pigeon_sender", "queries.sql", SENDER_SOURCES, "SQL"),
    ("pigeon_tracker", "queries.sql", TRACKER_SOURCES, "SQL"),
    ("pigeon_imap_sync", "queries.sql", IMAP_SYNC_SOURCES, "SQL"),
]
# Where the query files live on disk (every `.sql` file but the migrations is one).
SQL_FOLDERS = [COMMON_SOURCES, PROJECTOR_SOURCES, API_SOURCES, SENDER_SOURCES]
SQL_FOLDERS += [TRACKER_SOURCES, IMAP_SYNC_SOURCES]

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


@pytest.mark.parametrize(("package", "filename"), [(p, f) for p, f, _, _ in QUERY_FILES])
def test_shipped_query_files_parse(package: str, filename: str) -> None:
    queries = Queries.from_package(package, filename)
    assert queries.items()
    for name, sql in queries.items():
        assert re.fullmatch(r"[a-z0-9_]+", name)
        assert sql.strip(), f"{filename}: {name} has no SQL"
        assert not any(line.lstrip().startswith("--") for line in sql.splitlines())


def _used_names(sources: Path, variable: str) -> set[str]:
    """Names used as `<variable>.<name>` in a package's Python files (the variable holds
    its query file)."""
    used: set[str] = set()
    pattern = rf"\b{variable}\.([a-z][a-z0-9_]*)\b"
    for path in sources.rglob("*.py"):
        used |= set(re.findall(pattern, path.read_text(encoding="utf-8")))
    return used - {"items", "prepare_all", "origin"}


@pytest.mark.parametrize(("package", "filename", "sources", "variable"), QUERY_FILES)
def test_every_query_the_code_uses_exists(
    package: str, filename: str, sources: Path, variable: str
) -> None:
    defined = {name for name, _ in Queries.from_package(package, filename).items()}
    used = _used_names(sources, variable)
    assert used, f"no {variable}.<name> use found: the search is broken"
    assert used <= defined, f"{filename} lacks {sorted(used - defined)}"


@pytest.mark.parametrize(("package", "filename", "sources", "variable"), QUERY_FILES)
def test_every_query_a_file_defines_is_used(
    package: str, filename: str, sources: Path, variable: str
) -> None:
    defined = {name for name, _ in Queries.from_package(package, filename).items()}
    unused = defined - _used_names(sources, variable)
    assert not unused, f"{filename}: {sorted(unused)} used nowhere"


def test_every_query_file_is_listed() -> None:
    shipped = {
        (path.parent, path.name)
        for folder in SQL_FOLDERS
        for path in folder.glob("*.sql")  # migrations sit in a sub-folder of their own
    }
    assert shipped == {(sources, filename) for _, filename, sources, _ in QUERY_FILES}


# A statement in a service's Python source that is SQL, not a named query.
INLINE_SQL = re.compile(
    r"""["'](?:SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|TRUNCATE|CREATE (?:TEMP )?TABLE)\b"""
)
# Python that holds no query of a service: the IMAP clients (whose SELECT is IMAP's) and
# the embedded server's psql (a CREATE DATABASE of a checked name, before any service).
# The rebuild's copies of the read models: DDL built from the catalog's table names
# (`CREATE TABLE pigeon_rebuild.x (LIKE public.x ...)`), which no named query can hold.
BUILT_DDL = re.compile(r"""f["']CREATE TABLE \{SHADOW_SCHEMA\}""")
NOT_SQL = {"folder_reader.py", "imap_client.py", "appender.py", "imap_protocol.py", "postgres.py"}


def test_no_inline_sql_in_the_services() -> None:
    libs = [path for path in ROOT.glob("libs/*/src") if path.parent.name != "pigeon_testing"]
    sources = [*libs, *ROOT.glob("services/*/src"), ROOT / "cli" / "src"]
    inline = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in sources
        for path in folder.rglob("*.py")
        if path.name not in NOT_SQL
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if INLINE_SQL.search(line) and not BUILT_DDL.search(line)
    ]
    assert not inline, f"SQL outside a named-query file: {inline}"
