"""The named queries of pigeon_common's own helpers (`queries.sql` beside this module)."""

from __future__ import annotations

from pigeon_common.queries import Queries

SQL = Queries.from_package("pigeon_common", "queries.sql")
