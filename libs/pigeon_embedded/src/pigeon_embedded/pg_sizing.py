"""Memory and WAL settings for the embedded PostgreSQL, sized from the machine.

PostgreSQL's own defaults (128 MB of shared buffers, 1 GB of WAL between checkpoints) are
made to start anywhere. A campaign of a million recipients has about 1 GB of tables and
indexes and writes several GB of WAL while it sends: on the defaults the server evicts
its working set and checkpoints every half minute, and the send rate fell to two thirds
of a small campaign's (docs/operations.md, "Large campaigns"). An eighth of the memory for
buffers, bounded, is the usual conservative share on a machine that runs other services
beside the database.
"""

from __future__ import annotations

import os
from pathlib import Path

MB = 1024 * 1024
MIN_SHARED_BUFFERS = 128 * MB  # PostgreSQL's own default: never go below it
MAX_SHARED_BUFFERS = 2048 * MB
SHARED_BUFFERS_SHARE = 8  # one eighth of the memory
MAINTENANCE_WORK_MEM_SHARE = 4  # a quarter of the buffers, for index builds and vacuum
MAX_WAL_SIZE = "4GB"  # checkpoints apart by size at most this much WAL (disk, not memory)
CHECKPOINT_TIMEOUT = "15min"
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


def machine_memory() -> int:
    """Bytes of memory this process may use: the physical memory, or the cgroup's limit
    when that is lower."""
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = CGROUP_MEMORY_MAX.read_text().strip()
    except OSError:
        return physical
    return min(physical, int(limit)) if limit.isdigit() else physical


def sized_settings(memory: int) -> tuple[str, ...]:
    """`name=value` settings for a server on a machine with `memory` bytes."""
    buffers = min(MAX_SHARED_BUFFERS, max(MIN_SHARED_BUFFERS, memory // SHARED_BUFFERS_SHARE))
    buffers_mb = buffers // MB
    return (
        f"shared_buffers={buffers_mb}MB",
        f"maintenance_work_mem={max(64, buffers_mb // MAINTENANCE_WORK_MEM_SHARE)}MB",
        f"max_wal_size={MAX_WAL_SIZE}",
        f"checkpoint_timeout={CHECKPOINT_TIMEOUT}",
    )
