"""A failed connection to a mailbox server as a command error: invalid (422) when the
host policy refuses the address (a setting of this installation), else a remote error
(502) naming the kind."""

from __future__ import annotations

from pigeon_api.commands.remote import RemoteError
from pigeon_common import events as ev
from pigeon_common.connect_failure import ConnectFailure, FailureKind
from pigeon_common.domain.errors import Invalid
from pigeon_common.host_policy import HostDeniedError, HostPolicy


def connect_error(failure: ConnectFailure) -> Invalid | RemoteError:
    """`code` is `<protocol>_<kind>`: smtp_refused, smtp_timeout, smtp_tls,
    smtp_not_a_server, smtp_login_refused, imap_closed... or mailbox_host_denied."""
    if failure.kind is FailureKind.DENIED:
        return Invalid("mailbox_host_denied", failure.message)
    return RemoteError(f"{failure.protocol.lower()}_{failure.kind}", failure.message)


def check_mailbox_hosts(policy: HostPolicy, config: ev.MailboxConfig) -> None:
    """At save time (no DNS: cheap), refuse an SMTP or IMAP host that is itself an IP
    address the host policy refuses; names are checked when connecting."""
    for side, endpoint in (("smtp", config.smtp), ("imap", config.imap)):
        try:
            policy.check_literal(endpoint.host)
        except HostDeniedError as exc:
            raise Invalid(
                "mailbox_host_denied", f"{side}.host: {exc.reason}", field=f"{side}.host"
            ) from None
