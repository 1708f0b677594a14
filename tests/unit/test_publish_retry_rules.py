"""Which JetStream publish failures are retried (pure: classifying nats-py's errors)."""

from __future__ import annotations

import nats.errors
import nats.js.errors

from pigeon_common.jetstream import is_refused, is_retryable, is_unanswered


def test_refusals_that_prove_nothing_was_stored() -> None:
    for exc in (
        nats.js.errors.NoStreamResponseError(),
        nats.errors.NoRespondersError(),
        nats.errors.ConnectionReconnectingError(),
        nats.errors.OutboundBufferLimitError(),
        nats.js.errors.ServiceUnavailableError(),
        nats.js.errors.APIError(code=503, description="JetStream system temporarily unavailable"),
    ):
        assert is_refused(exc) and is_retryable(exc), exc


def test_a_lost_ack_is_retried_only_as_unanswered() -> None:
    for exc in (nats.errors.TimeoutError(), TimeoutError()):
        assert is_unanswered(exc) and not is_refused(exc) and is_retryable(exc)


def test_real_refusals_are_not_retried() -> None:
    for exc in (
        nats.js.errors.BadRequestError(code=400, description="expected stream does not match"),
        nats.js.errors.KeyWrongLastSequenceError(description="wrong last sequence: 3"),
        nats.js.errors.APIError(code=500, description="insufficient resources"),
        nats.errors.ConnectionClosedError(),
        ValueError("not NATS"),
    ):
        assert not is_retryable(exc), exc
