"""The loopback-only rule decides on the host text alone: no resolver is ever asked."""

from __future__ import annotations

import socket

import pytest

from pigeon_api.commands.loopback import is_loopback_host, require_loopback
from pigeon_common.domain.errors import Conflict


@pytest.fixture(autouse=True)
def _no_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the loopback rule must not resolve names")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyname", refuse)


@pytest.mark.parametrize(
    "host",
    [
        *("127.0.0.1", "127.5.6.7", "::1", "[::1]"),
        *("localhost", "LOCALHOST", "mail.localhost", "localhost."),
    ],
)
def test_loopback_hosts_pass(host: str) -> None:
    assert is_loopback_host(host)
    require_loopback(host, "smtp.host")


@pytest.mark.parametrize(
    "host",
    [
        "smtp.example.com",
        "10.0.0.1",
        "192.168.1.1",
        "0.0.0.0",  # noqa: S104 (a host to refuse, not one to bind)
        "::",
        "::ffff:8.8.8.8",
        "[2001:db8::1]",
        "localhost.example.com",
        "127.0.0.1.nip.io",
        "x7f000001",
    ],
)
def test_other_hosts_are_refused_without_resolving(host: str) -> None:
    assert not is_loopback_host(host)
    with pytest.raises(Conflict, match="loopback") as refused:
        require_loopback(host, "smtp.host")
    assert refused.value.field == "smtp.host"
