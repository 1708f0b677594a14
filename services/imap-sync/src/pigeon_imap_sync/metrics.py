"""imap-sync's Prometheus metrics, per mailbox (its id: the one label the issue allows;
never a recipient or a campaign), recorded when a sync of its bounce folder ends."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from prometheus_client import Counter, Gauge

RUNS = Counter(
    "pigeon_imap_sync_runs_total",
    "Syncs of a mailbox's bounce folder, by result (ok or error; a connection that could "
    "not be opened counts as an error).",
    ["mailbox", "result"],
)
LAST_SUCCESS = Gauge(
    "pigeon_imap_sync_last_success_timestamp_seconds",
    "When the mailbox's last successful sync ended (Unix time).",
    ["mailbox"],
)
MESSAGES = Counter(
    "pigeon_imap_sync_messages_total",
    "Mail read from bounce folders, by what it was found to be (bounced, deferred, "
    "replied, auto_replied, skipped, ignored).",
    ["kind"],
)
KINDS = ("bounced", "deferred", "replied", "auto_replied", "skipped", "ignored")


def sync_succeeded(mailbox_id: uuid.UUID, counts: Mapping[str, int]) -> None:
    mailbox = str(mailbox_id)
    RUNS.labels(mailbox, "ok").inc()
    LAST_SUCCESS.labels(mailbox).set(time.time())
    for kind in KINDS:
        if counts.get(kind):
            MESSAGES.labels(kind).inc(counts[kind])


def sync_failed(mailbox_id: uuid.UUID) -> None:
    RUNS.labels(str(mailbox_id), "error").inc()
