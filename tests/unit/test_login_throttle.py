"""The sign-in throttle: a sliding window per key, with a clock moved by hand."""

from __future__ import annotations

import pytest

from pigeon_api.login_guard import (
    LoginGuard,
    LoginThrottled,
    account_key,
    check_login,
    password_matches,
    record_login,
)
from pigeon_api.throttle import SlidingWindow
from pigeon_common.auth import hash_password


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_refused_after_limit_hits_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    window = SlidingWindow(3, 60, clock)
    for step in range(3):
        assert window.retry_after("k") == 0
        window.hit("k")
        clock.now += 10 if step < 2 else 0
    # hits at 1000, 1010, 1020; now 1020: the oldest leaves at 1060
    assert window.retry_after("k") == pytest.approx(40)
    assert window.retry_after("other") == 0
    clock.now = 1059.9
    assert window.retry_after("k") == pytest.approx(0.1)
    clock.now = 1060.0
    assert window.retry_after("k") == 0
    window.hit("k")  # 1010, 1020, 1060 within the window again: refused until 1070
    assert window.retry_after("k") == pytest.approx(10)


def test_clear_forgets_a_key() -> None:
    window = SlidingWindow(1, 60, Clock())
    window.hit("k")
    assert window.retry_after("k") > 0
    window.clear("k")
    assert window.retry_after("k") == 0


def test_memory_is_bounded_per_key_and_in_keys() -> None:
    clock = Clock()
    window = SlidingWindow(2, 60, clock, max_keys=3)
    for _ in range(1000):
        window.hit("flood")
    assert len(window._hits["flood"]) == 2
    for key in ("a", "b", "c"):
        clock.now += 1
        window.hit(key)
    assert "flood" not in window._hits  # the stalest key went first
    assert len(window._hits) == 3


def test_expired_keys_are_dropped_when_read() -> None:
    clock = Clock()
    window = SlidingWindow(2, 60, clock)
    window.hit("k")
    clock.now += 61
    assert window.retry_after("k") == 0
    assert "k" not in window._hits


def _guard(clock: Clock) -> LoginGuard:
    return LoginGuard.create(account_failures=2, client_failures=3, window_sec=30, clock=clock)


def test_check_login_throttles_per_account_and_per_client() -> None:
    clock = Clock()
    guard = _guard(clock)
    record_login(guard, "Ann@Example.com", "10.0.0.1", ok=False)
    record_login(guard, "ann@example.com", "10.0.0.2", ok=False)
    with pytest.raises(LoginThrottled) as caught:
        check_login(guard, "ANN@example.com", "10.0.0.3")  # same account, any address
    assert caught.value.retry_after == 30
    check_login(guard, "bob@example.com", "10.0.0.1")
    record_login(guard, "bob@example.com", "10.0.0.1", ok=False)
    record_login(guard, "carol@example.com", "10.0.0.1", ok=False)
    with pytest.raises(LoginThrottled):
        check_login(guard, "dave@example.com", "10.0.0.1")  # this address, any account
    clock.now += 30
    check_login(guard, "ann@example.com", "10.0.0.1")


def test_a_success_clears_the_account_not_the_client() -> None:
    clock = Clock()
    guard = _guard(clock)
    record_login(guard, "ann@example.com", "10.0.0.1", ok=False)
    record_login(guard, "ann@example.com", "10.0.0.1", ok=False)
    record_login(guard, "ann@example.com", "10.0.0.1", ok=True)
    check_login(guard, "ann@example.com", "10.0.0.2")
    record_login(guard, "x@example.com", "10.0.0.1", ok=False)
    with pytest.raises(LoginThrottled):
        check_login(guard, "ann@example.com", "10.0.0.1")


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    clock = Clock()
    guard = _guard(clock)
    record_login(guard, "a@example.com", "c", ok=False)
    record_login(guard, "a@example.com", "c", ok=False)
    clock.now += 29.95
    with pytest.raises(LoginThrottled) as caught:
        check_login(guard, "a@example.com", "c")
    assert caught.value.retry_after == 1


def test_account_key_folds_case_and_spaces() -> None:
    assert account_key(" Ann@Example.COM ") == "ann@example.com"


async def test_password_matches_uses_the_dummy_hash_for_an_unknown_email() -> None:
    guard = _guard(Clock())
    assert guard.dummy_hash.startswith("$argon2id$")
    assert not await password_matches(guard, None, "anything")
    real = hash_password("the-right-password")
    assert await password_matches(guard, real, "the-right-password")
    assert not await password_matches(guard, real, "wrong")
