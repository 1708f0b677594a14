"""The cyclic garbage collector, tuned for a long-running service.

A service allocates millions of short-lived containers (decoded events, rows, argument
tuples) that reference counting frees at once. With CPython's default the cycle
collector runs every 700 net allocations and scans every young survivor, looking for
cycles that are not there: a fifth to a third of an import's time (`bench/import.py
--rows 200000`: 12.7 s with the default, 8.6 s with a pass every 50,000). What is alive
once a service has started (modules, schemas, prepared queries) is frozen out of the
scans for good, and a pass waits for 50,000 allocations: cyclic garbage lives a little
longer, bounded by that count.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


def tune_for_service() -> None:
    """Freeze what exists now and make collections rare (idempotent)."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
