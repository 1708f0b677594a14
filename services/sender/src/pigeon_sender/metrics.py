"""The sender's Prometheus metrics, recorded where the worker decides: each recipient's
outcome, each SMTP reply's latency, each filing of Sent copies, each chunk job taken."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from pigeon_common.connect_failure import FailureKind
from pigeon_sender.records import ClaimStatus

MESSAGES = Counter(
    "pigeon_sender_messages_total",
    "Recipients given an outcome by the sender: sent, failed, unknown, suppressed, or retry "
    "(a temporary failure: the recipient is released and tried again later).",
    ["outcome"],
)
SMTP_REPLY_SECONDS = Histogram(
    "pigeon_sender_smtp_reply_seconds",
    "From handing one message to the SMTP server to its final reply (a new connection's "
    "greeting, TLS and login included when one was opened for it).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
SMTP_CONNECT_FAILURES = Counter(
    "pigeon_sender_smtp_connect_failures_total",
    "SMTP servers that could not be reached or refused the login, by kind of failure.",
    ["kind"],
)
COPIES_FILED = Counter(
    "pigeon_sender_copies_filed_total",
    "Copies of sent messages filed in the mailbox's Sent folder.",
)
COPIES_UNFILED = Counter(
    "pigeon_sender_copies_unfiled_total",
    "Copies a filing attempt could not file (the IMAP server refused or was away); they "
    "are kept and the chunk comes back.",
)
CHUNKS = Counter("pigeon_sender_chunks_total", "Send-chunk jobs the sender took.")
CHUNKS_REDELIVERED = Counter(
    "pigeon_sender_chunks_redelivered_total",
    "Send-chunk jobs taken on a second or later delivery (a retry, or a dead sender's).",
)
CHUNKS_IN_FLIGHT = Gauge(
    "pigeon_sender_chunks_in_flight", "Send-chunk jobs this sender is working on now."
)

# Bound once: every outcome is exported from the start (rate() needs the zero), and the
# per-message path counts with a dict lookup.
OUTCOMES = {
    status: MESSAGES.labels(status.value)
    for status in (
        ClaimStatus.SENT,
        ClaimStatus.FAILED,
        ClaimStatus.UNKNOWN,
        ClaimStatus.SUPPRESSED,
        ClaimStatus.RETRY,
    )
}
CONNECT_FAILURES = {kind: SMTP_CONNECT_FAILURES.labels(kind.value) for kind in FailureKind}


def count_outcome(status: ClaimStatus) -> None:
    OUTCOMES[status].inc()
