"""The loopback-only rule for mailbox servers (`PIGEON_MAILBOX_HOSTS_LOOPBACK_ONLY`).

Decided on the host text alone: a literal IP must be a loopback address, `localhost`
(and names under `.localhost`, RFC 6761) pass, and every other name is refused without
being resolved, so that a generated host name sends no DNS query off this machine.
"""

from __future__ import annotations

import ipaddress

from pigeon_common.domain.errors import Conflict


def is_loopback_host(host: str) -> bool:
    """True when `host` names this machine without asking a resolver."""
    bare = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return bare == "localhost" or bare.endswith(".localhost")


def require_loopback(host: str, field: str) -> None:
    """Refuse (409: the stored mailbox, not the request, is at fault) a server that is
    not on this machine."""
    if not is_loopback_host(host):
        raise Conflict(
            "host_not_allowed",
            f"{field} {host!r} is not a loopback address; this installation only connects "
            "to mailbox servers on this machine (PIGEON_MAILBOX_HOSTS_LOOPBACK_ONLY)",
            field,
        )
