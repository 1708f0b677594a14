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


def test_only_answers_that_prove_nothing_was_stored_are_retried() -> None:
    no_leader = read_ack(b"", "503")
    assert isinstance(no_leader, NotStoredError) and no_leader.refused
    unavailable = read_ack(
        b'{"error":{"code":503,"err_code":10008,"description":"JetStream system '
        b'temporarily unavailable"}}',
        None,
    )
    assert isinstance(unavailable, NotStoredError) and unavailable.refused
    wrong_stream = read_ack(
        b'{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}',
        None,
    )
    assert isinstance(wrong_stream, NotStoredError) and not wrong_stream.refused
    unreadable = read_ack(b"not json", None)
    assert isinstance(unreadable, NotStoredError) and not unreadable.refused
