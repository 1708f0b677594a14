"""PIGEON_MAILBOX_HOSTS_LOOPBACK_ONLY before DNS: a host name other than localhost is
refused on its text alone, so no resolver is ever asked about it."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from pigeon_common.host_policy import HostDeniedError, HostPolicy

LOOPBACK_ONLY = HostPolicy(loopback_only=True)


@pytest.fixture(autouse=True)
def _no_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule is checked on text alone: asking a resolver or opening a connection (to
    any of the hosts below, none on this machine) fails the test instead."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the loopback rule must not resolve names or connect")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyname", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.parametrize(
    "host",
    [
        *("127.0.0.1", "127.5.6.7", "::1", "[::1]"),
        *("localhost", "LOCALHOST", "mail.localhost", "localhost."),
    ],
)
def test_loopback_hosts_pass(host: str) -> None:
    LOOPBACK_ONLY.check_name(host)


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
    with pytest.raises(HostDeniedError, match="loopback") as refused:
        LOOPBACK_ONLY.check_name(host)
    assert refused.value.host == host


@pytest.mark.parametrize("host", ["smtp.example.com", "10.0.0.1"])
def test_without_the_setting_names_are_left_to_the_connect_time_check(host: str) -> None:
    HostPolicy().check_name(host)
    HostPolicy(deny=(ipaddress.ip_network("10.0.0.0/8"),)).check_name("smtp.example.com")
