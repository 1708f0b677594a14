"""Signing in: throttled per account and per client address, the same work for every email.

`check_login` is what every sign-in surface calls first (REST's POST /auth/token, the
admin UI's form): it raises `LoginThrottled` while the email or the client address has
too many recent failures. `password_matches` always runs one argon2 verification, against
a dummy hash when the email is unknown, so an unknown email takes as long as a known one
and the answer's timing does not tell which emails have accounts.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from dataclasses import dataclass

from pigeon_api.throttle import Clock, SlidingWindow
from pigeon_common.auth import hash_password, verify_password


class LoginThrottled(Exception):
    """Raised by `check_login` while the account or the client address is throttled;
    `retry_after` is in whole seconds (at least 1)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class LoginGuard:
    """The two throttles and the dummy hash; one per API process (built at start)."""

    accounts: SlidingWindow
    clients: SlidingWindow
    dummy_hash: str

    @classmethod
    def create(
        cls,
        account_failures: int,
        client_failures: int,
        window_sec: float,
        clock: Clock | None = None,
    ) -> LoginGuard:
        def window(limit: int) -> SlidingWindow:
            if clock is None:
                return SlidingWindow(limit, window_sec)
            return SlidingWindow(limit, window_sec, clock)

        # A hash of a random password, made with the same parameters as users' hashes.
        dummy = hash_password(secrets.token_urlsafe(24))
        return cls(window(account_failures), window(client_failures), dummy)


def account_key(email: str) -> str:
    """Emails are matched case-insensitively at sign-in, so they are throttled that way."""
    return email.strip().lower()


def check_login(guard: LoginGuard, email: str, client: str) -> None:
    """Raise LoginThrottled when this email or this client may not try now."""
    wait = max(guard.accounts.retry_after(account_key(email)), guard.clients.retry_after(client))
    if wait > 0:
        raise LoginThrottled(max(1, math.ceil(wait)))


def record_login(guard: LoginGuard, email: str, client: str, *, ok: bool) -> None:
    """Count a failure against both keys; a success clears the account's failures (not the
    client's: a client cannot wash its failures with a login of its own)."""
    if ok:
        guard.accounts.clear(account_key(email))
    else:
        guard.accounts.hit(account_key(email))
        guard.clients.hit(client)


async def password_matches(guard: LoginGuard, password_hash: str | None, password: str) -> bool:
    """One argon2 verification in a worker thread (it takes ~0.1 s of CPU and would stall
    the event loop), against the dummy hash when there is no user."""
    if password_hash is None:
        await asyncio.to_thread(verify_password, guard.dummy_hash, password)
        return False
    return await asyncio.to_thread(verify_password, password_hash, password)
