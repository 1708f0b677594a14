"""JetStream's answers to a publish, as the tracker reads them."""

from __future__ import annotations

from pigeon_tracker.publisher import NotStoredError, Stored, read_ack


def test_acks_are_read_fast_and_right() -> None:
    assert read_ack(b'{"stream":"EVENTS","seq":42}', None) == Stored(42, False)
    assert read_ack(b'{"stream":"EVENTS","seq":43,"duplicate": true}', None) == Stored(43, True)
    refused = read_ack(
        b'{"error":{"code":400,"err_code":10060,"description":"expected stream does not '
        b'match"},"stream":"EVENTS","seq":0}',
        None,
    )
    assert isinstance(refused, NotStoredError) and "expected stream" in refused.reason
    assert isinstance(read_ack(b"", "503"), NotStoredError)
    assert isinstance(read_ack(b"not json", None), NotStoredError)
    assert isinstance(read_ack(b"[1]", None), NotStoredError)
