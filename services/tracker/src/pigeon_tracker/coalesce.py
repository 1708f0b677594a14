"""Bounding the events that public URLs can add: pure rules, no I/O.

Every mail carries its pixel, click and unsubscribe URLs; anyone holding one can fetch it
in a loop. Two rules keep such a loop from growing the event store without bound:

- **Opens and clicks**: `FloodGate` counts, per token (a message's pixel, or one link of
  one message) and wall-clock minute, the fetches this worker records; beyond `limit`
  nothing is stored and the fetch is still answered. So one token adds at most `limit`
  events a minute per worker. No message ids: shared ids would merge the genuine opens
  of two workers (the 2nd open seen by each would be one event), and every id costs an
  entry in JetStream's duplicate table on the hot path.
- **Unsubscribe and re-subscribe**: the message id is `<action>:<campaign>:<recipient>:
  <bucket>`, with a bucket of ACTION_WINDOW_SEC (inside the EVENTS stream's 5-minute
  duplicate window), so repeated POSTs of one action store one event per window. When
  the id was taken by an earlier event that a later opposite action has since undone,
  `chained_id` makes a new id from the earlier event's sequence: deterministic, so a
  flood in that state is stored once again, not once per request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

ACTION_WINDOW_SEC = 60
MINUTE_SEC = 60
# Tokens counted per minute at most; beyond it a new token's fetches are recorded without
# being counted, so the gate's memory stays bounded at any traffic.
MAX_TOKENS = 200_000


@dataclass
class FloodGate:
    """Per-worker counts of recorded fetches per token in the current minute.

    `limit` 0 records every fetch (no counting)."""

    limit: int
    max_tokens: int = MAX_TOKENS
    _minute: int = -1
    _counts: dict[str, int] = field(default_factory=dict)

    def admit(self, token: str, now: float) -> bool:
        """Whether to record this fetch of `token` at wall-clock time `now` (seconds)."""
        if self.limit == 0:
            return True
        minute = int(now // MINUTE_SEC)
        if minute != self._minute:
            self._minute = minute
            self._counts = {}
        counts = self._counts
        seen = counts.get(token, 0)
        if seen >= self.limit:
            return False
        if seen == 0 and len(counts) >= self.max_tokens:
            return True  # recorded, uncounted: memory stays bounded at any traffic
        counts[token] = seen + 1
        return True

    def release(self, token: str) -> None:
        """Give back the count of a fetch whose event was not stored (answered 503)."""
        seen = self._counts.get(token, 0)
        if seen > 0:
            self._counts[token] = seen - 1


def action_id(action: str, campaign_id: uuid.UUID, recipient_id: uuid.UUID, now: float) -> str:
    """The message id of an unsubscribe or re-subscribe POST at wall-clock time `now`."""
    return f"{action}:{campaign_id}:{recipient_id}:{int(now // ACTION_WINDOW_SEC)}"


def chained_id(msg_id: str, earlier_seq: int) -> str:
    """The id to store an action under when `msg_id` was taken by the event at
    `earlier_seq` and that event's effect has been undone since."""
    return f"{msg_id}:{earlier_seq}"
