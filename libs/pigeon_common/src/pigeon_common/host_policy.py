"""Which mailbox servers MC Pigeon may connect to: pure checks of resolved addresses.

`PIGEON_MAILBOX_HOSTS_DENY` (CIDR ranges) and `PIGEON_MAILBOX_HOSTS_LOOPBACK_ONLY` are
checked against every address a mailbox's host name resolves to, when connecting (after
DNS, so a name that resolves into a denied range is refused too) and, for a host given as
an IP address, when the mailbox is saved.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class HostDeniedError(ConnectionError):
    """Raised before connecting when a mailbox server's address is not allowed; `reason`
    says which rule refused it (never the DNS answer beyond the refused address)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


def parse_networks(value: str) -> tuple[Network, ...]:
    """A comma-separated CIDR list (`10.0.0.0/8, fd00::/8`); ValueError names a bad entry."""
    networks = []
    for part in value.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not a CIDR range: {entry!r}") from None
    return tuple(networks)


def _unmapped(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is checked as the IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class HostPolicy:
    """The rules; the default allows every address."""

    deny: tuple[Network, ...] = ()
    loopback_only: bool = False

    def refusal(self, address: str) -> str | None:
        """Why `address` (an IP address string) may not be connected to; None if it may."""
        try:
            ip = _unmapped(ipaddress.ip_address(address.split("%", 1)[0]))
        except ValueError:
            return f"{address!r} is not an IP address"
        if self.loopback_only and not ip.is_loopback:
            return f"{ip} is not a loopback address (PIGEON_MAILBOX_HOSTS_LOOPBACK_ONLY)"
        for network in self.deny:
            if ip.version == network.version and ip in network:
                return f"{ip} is in the denied range {network} (PIGEON_MAILBOX_HOSTS_DENY)"
        return None

    def check(self, host: str, addresses: Iterable[str]) -> None:
        """Raise HostDeniedError when any resolved address of `host` is refused (a name
        with one good and one denied address is refused: the connection could go to
        either)."""
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                raise HostDeniedError(host, reason)

    def check_name(self, host: str) -> None:
        """Before DNS: with loopback_only, a host that is neither an IP address nor
        `localhost` (or a name under `.localhost`, RFC 6761) is refused unresolved, so a
        generated or hostile name sends no DNS query off the machine."""
        if not self.loopback_only:
            return
        bare = host.strip().strip("[]").rstrip(".").lower()
        try:
            ipaddress.ip_address(bare.split("%", 1)[0])
        except ValueError:
            if bare != "localhost" and not bare.endswith(".localhost"):
                raise HostDeniedError(
                    host,
                    f"{host!r} is not a loopback address and is not resolved "
                    "(PIGEON_MAILBOX_HOSTS_LOOPBACK_ONLY)",
                ) from None
            return
        self.check(host, [bare])

    def check_literal(self, host: str) -> None:
        """At save time, without DNS: refuse a host that is itself a denied IP address
        (or `localhost`-like names are left to the connect-time check)."""
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        self.check(host, [host.strip("[]")])


ALLOW_ALL = HostPolicy()
