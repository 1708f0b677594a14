"""Connection failures: their kind, and what of the remote's words may be shown."""

from __future__ import annotations

import socket
import ssl

import aiosmtplib
import pytest

from pigeon_common.connect_failure import (
    FailureKind,
    imap_failure,
    printable,
    smtp_failure,
    smtp_reply,
)
from pigeon_common.host_policy import HostDeniedError, HostPolicy, parse_networks
from pigeon_common.imap_protocol import (
    ImapAuthError,
    ImapConnectionError,
    ImapError,
    ImapProtocolError,
    ImapRefusedError,
    ImapTimeoutError,
)
from pigeon_sender.settings import SenderSettings

NATS_BANNER = 'INFO {"server_id":"NDJWE","version":"2.10.1","max_payload":1048576}'


def _caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def test_printable_keeps_plain_text_and_refuses_binary() -> None:
    assert printable("5.7.1 relaying\n denied\r") == "5.7.1 relaying  denied"
    assert printable("\x00\x01garbage") is None
    assert printable("caf\u00e9") is None  # not ASCII: not an SMTP reply's text
    assert printable("") is None
    long = printable("x" * 500)
    assert long is not None and len(long) == 200


def test_smtp_reply_needs_a_code_and_printable_text() -> None:
    assert smtp_reply(554, "5.7.1 go away") == "554 5.7.1 go away"
    assert smtp_reply(-1, NATS_BANNER) is None
    assert smtp_reply(999, "x") is None
    assert smtp_reply(421, "\x00\xff") == "421"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (aiosmtplib.SMTPResponseException(-1, f"Malformed SMTP response line: {NATS_BANNER}"),
         FailureKind.NOT_A_SERVER),
        (aiosmtplib.SMTPConnectTimeoutError("Timed out waiting for server ready message"),
         FailureKind.TIMEOUT),
        (_caused(aiosmtplib.SMTPConnectError("Error connecting"), ConnectionRefusedError(111, "x")),
         FailureKind.REFUSED),
        (aiosmtplib.SMTPConnectError("Error connecting: [SSL: WRONG_VERSION_NUMBER] wrong"),
         FailureKind.TLS),
        (aiosmtplib.SMTPConnectError("Error connecting to h on port 1: Unexpected EOF received"),
         FailureKind.CLOSED),
        (aiosmtplib.SMTPServerDisconnected("Connection lost"), FailureKind.CLOSED),
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"),
         FailureKind.LOGIN_REFUSED),
        (aiosmtplib.SMTPConnectResponseError(554, "5.7.1 no"), FailureKind.REJECTED),
        (aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server."),
         FailureKind.TLS),
        (socket.gaierror(-2, "Name or service not known"), FailureKind.UNREACHABLE),
        (HostDeniedError("mx", "10.0.0.1 is in the denied range"), FailureKind.DENIED),
        (ConnectionRefusedError(111, "refused"), FailureKind.REFUSED),
        (TimeoutError(), FailureKind.TIMEOUT),
        (OSError(113, "No route to host"), FailureKind.UNREACHABLE),
    ],
)  # fmt: skip
def test_smtp_failures_are_classified(exc: BaseException, kind: FailureKind) -> None:
    failure = smtp_failure(exc, "mail.example.com", 587)
    assert failure.kind is kind
    assert failure.message.startswith("SMTP server mail.example.com:587: ")
    assert "INFO" not in failure.message and "server_id" not in failure.message


def test_smtp_messages_show_well_formed_replies_only() -> None:
    rejected = smtp_failure(aiosmtplib.SMTPConnectResponseError(554, "5.7.1 go away"), "h", 25)
    assert rejected.message == (
        "SMTP server h:25: the server refused the connection: 554 5.7.1 go away"
    )
    login = smtp_failure(aiosmtplib.SMTPAuthenticationError(535, "5.7.8 no"), "h", 25)
    assert login.message == "SMTP server h:25: login refused: 535 5.7.8 no"
    garbage = smtp_failure(aiosmtplib.SMTPResponseException(-1, "Malformed: \x00ab"), "h", 25)
    assert garbage.message == "SMTP server h:25: not an SMTP server"
    denied = smtp_failure(HostDeniedError("h", "10.1.2.3 is in the denied range"), "h", 25)
    assert denied.message.endswith("not allowed: 10.1.2.3 is in the denied range")


def test_an_untrusted_certificate_says_so() -> None:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    failure = smtp_failure(_caused(aiosmtplib.SMTPConnectError("x"), error), "h", 465)
    assert failure.kind is FailureKind.TLS
    assert failure.message.endswith("TLS failed: certificate not trusted (self-signed certificate)")
    words = aiosmtplib.SMTPConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify")
    assert "certificate not trusted" in smtp_failure(words, "h", 465).message


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ImapProtocolError(f"not an IMAP response: b'{NATS_BANNER}'"), FailureKind.NOT_A_SERVER),
        (ImapTimeoutError("connecting timed out"), FailureKind.TIMEOUT),
        (_caused(ImapConnectionError("cannot connect"), ConnectionRefusedError(111, "x")),
         FailureKind.REFUSED),
        (_caused(ImapConnectionError("TLS handshake failed"), ssl.SSLError(1, "wrong version")),
         FailureKind.TLS),
        (ImapConnectionError("connection closed by the server (h)"), FailureKind.CLOSED),
        (ImapAuthError("AUTHENTICATIONFAILED", "Authentication failed.", command="LOGIN"),
         FailureKind.LOGIN_REFUSED),
        (ImapRefusedError("BYE too many connections"), FailureKind.REJECTED),
        (ImapError(None, "h does not offer STARTTLS", command="STARTTLS"), FailureKind.TLS),
        (_caused(ImapConnectionError("cannot connect"), HostDeniedError("h", "no")),
         FailureKind.DENIED),
    ],
)  # fmt: skip
def test_imap_failures_are_classified(exc: BaseException, kind: FailureKind) -> None:
    failure = imap_failure(exc, "imap.example.com", 993)
    assert failure.kind is kind
    assert failure.message.startswith("IMAP server imap.example.com:993: ")
    assert "INFO" not in failure.message


def test_imap_messages_show_parsed_response_text_only() -> None:
    login = imap_failure(ImapAuthError("AUTHENTICATIONFAILED", "Authentication failed."), "h", 1)
    assert login.message == "IMAP server h:1: login refused: Authentication failed."
    bye = imap_failure(ImapRefusedError("BYE \x00\x01"), "h", 1)
    assert bye.message == "IMAP server h:1: the server refused the connection"
    other = imap_failure(ImapProtocolError("not an IMAP response: b'HTTP/1.1 400'"), "h", 1)
    assert other.message == "IMAP server h:1: not an IMAP server"


# --- host policy --------------------------------------------------------------------------


def test_parse_networks() -> None:
    assert [str(n) for n in parse_networks(" 10.0.0.0/8, ,fd00::/8,192.168.1.7")] == [
        "10.0.0.0/8",
        "fd00::/8",
        "192.168.1.7/32",
    ]
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match="not a CIDR range: 'nonsense'"):
        parse_networks("10.0.0.0/8,nonsense")


def test_policy_refuses_denied_ranges_after_resolution() -> None:
    policy = HostPolicy(deny=parse_networks("10.0.0.0/8, fd00::/8, 169.254.0.0/16"))
    assert policy.refusal("192.0.2.1") is None
    assert policy.refusal("10.1.2.3") is not None
    assert policy.refusal("::ffff:10.1.2.3") is not None  # IPv4-mapped: the IPv4 rule
    assert policy.refusal("fd12::1") is not None
    assert policy.refusal("fe80::1%eth0") is None
    policy.check("mx.example.com", ["192.0.2.1"])
    with pytest.raises(HostDeniedError, match=r"10\.9\.9\.9 is in the denied range 10\.0\.0\.0/8"):
        policy.check("mx.example.com", ["192.0.2.1", "10.9.9.9"])  # any address counts


def test_loopback_only() -> None:
    policy = HostPolicy(loopback_only=True)
    assert policy.refusal("127.0.0.1") is None and policy.refusal("::1") is None
    assert policy.refusal("192.0.2.1") is not None
    with pytest.raises(HostDeniedError, match="LOOPBACK_ONLY"):
        policy.check("smtp.example.com", ["198.51.100.4"])


def test_check_literal_refuses_ip_hosts_only() -> None:
    policy = HostPolicy(deny=parse_networks("10.0.0.0/8, ::1/128"))
    policy.check_literal("mail.example.com")  # a name: checked when connecting
    policy.check_literal("192.0.2.1")
    with pytest.raises(HostDeniedError):
        policy.check_literal("10.0.0.5")
    with pytest.raises(HostDeniedError):
        policy.check_literal("[::1]")


def test_settings_build_the_policy_and_refuse_a_bad_range() -> None:
    settings = SenderSettings(mailbox_hosts_deny="10.0.0.0/8", mailbox_hosts_loopback_only=True)
    policy = settings.mailbox_host_policy()
    assert policy.loopback_only and [str(n) for n in policy.deny] == ["10.0.0.0/8"]
    assert SenderSettings().mailbox_host_policy() == HostPolicy()
    with pytest.raises(ValueError, match="not a CIDR range"):
        SenderSettings(mailbox_hosts_deny="10.0.0.0/33")
