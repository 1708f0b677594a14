"""The stream sequence and the consumer's pending count read from JetStream ack subjects."""

from __future__ import annotations

import pytest

from pigeon_projector.pull import consumer_pending, stream_sequence

V1 = "$JS.ACK.EVENTS.c1.1.42.40.1764760000000000000.7"
V2 = "$JS.ACK.dom.ACCHASH.EVENTS.c1.1.43.41.1764760000000000000.0.token"


def test_both_layouts() -> None:
    assert (stream_sequence(V1), consumer_pending(V1)) == (42, 7)
    assert (stream_sequence(V2), consumer_pending(V2)) == (43, 0)


def test_other_subjects_are_refused() -> None:
    with pytest.raises(ValueError, match="ack subject"):
        consumer_pending("_INBOX.abc")
