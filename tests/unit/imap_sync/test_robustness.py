"""Whatever the bytes, `classify` answers: no exception, a sensible kind, single lines."""

from __future__ import annotations

import base64
import random
import time

import pytest

from pigeon_imap_sync import dsn as report_parser
from pigeon_imap_sync.classify import DEFAULT_MAX_BYTES, classify
from pigeon_imap_sync.inbound import InboundKind
from tests.unit.imap_sync.mails import (
    CAMPAIGN,
    OUR_ID,
    RECIPIENT,
    assert_single_lines,
    block,
    crlf,
    dsn,
    original_headers,
    reply,
)


def test_empty_message_is_unparsed() -> None:
    for raw in (b"", b"\r\n\r\n  \n"):
        result = classify(raw)
        assert result.kind is InboundKind.UNPARSED
        assert result.reason == "empty message"


def test_random_bytes_never_raise() -> None:
    rng = random.Random(20261124)
    alphabet = b'\r\n:;<>@=?-\t ="boundary--multipart/report'
    for size in [1, 2, 10, 100, 1000, 10_000, 100_000] * 10:
        noise = bytes(rng.randrange(256) for _ in range(size))
        shaped = bytes(rng.choice(alphabet) for _ in range(size))
        for raw in (noise, shaped, b"Subject: x\r\n" + noise):
            result = classify(raw)
            assert isinstance(result.kind, InboundKind)
            # `classify` catches everything; an internal error must not be what happened.
            assert not result.reason.startswith("classifier failed"), (raw[:80], result)
            assert_single_lines(result)


def test_a_body_without_any_header_is_not_a_message() -> None:
    result = classify(b"\x00\xff\xfe garbage without a colon\r\n\r\nmore")

    assert result.kind is InboundKind.UNPARSED
    assert "no header" in result.reason


def test_non_utf8_headers_and_body_are_decoded_with_replacements() -> None:
    raw = (
        b"From: J\xfcrgen <j@example.de>\r\n"
        b"Subject: Re: Fr\xfchling \xff\xfe\r\n"
        b"In-Reply-To: <" + OUR_ID.encode() + b">\r\n"
        b"Content-Type: text/plain; charset=x-klingon\r\n"
        b"\r\n"
        b"Gr\xfc\xdfe \x80\x81\r\n"
    )

    result = classify(raw)

    assert result.kind is InboundKind.REPLY
    assert result.sender == "j@example.de"
    assert result.subject.startswith("Re: Fr")
    assert result.references == ((CAMPAIGN, RECIPIENT),)


def test_a_message_over_the_limit_is_unparsed_but_its_header_is_read() -> None:
    head = reply(f"Subject: Re: Spring news\nIn-Reply-To: <{OUR_ID}>\n", body="")
    raw = head + b"A" * (20 * 1024 * 1024)
    assert len(raw) > DEFAULT_MAX_BYTES

    started = time.perf_counter()
    result = classify(raw)
    elapsed = time.perf_counter() - started

    assert result.kind is InboundKind.UNPARSED
    assert result.reason.startswith("too large")
    assert result.subject == "Re: Spring news"
    assert result.message_id == "reply-1@mail.example.org"
    assert result.references == ((CAMPAIGN, RECIPIENT),)
    assert elapsed < 1.0  # the body is never parsed


def test_a_plain_text_bounce_returning_a_large_message_is_found_in_time() -> None:
    # qmail returns the whole message as text after its notice; the detectors only need
    # the notice, and must not spend seconds on megabytes of a returned attachment.
    attachment = base64.encodebytes(random.Random(7).randbytes(6 * 1024 * 1024)).decode()
    raw = crlf(
        "From: MAILER-DAEMON@mx.example.net\n"
        "Subject: failure notice\n"
        "\n"
        "Hi. This is the qmail-send program at mx.example.net.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n"
        "\n"
        "<nobody@example.org>:\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\n"
        "\n"
        "--- Below this line is a copy of the message.\n"
        "\n"
        f"{original_headers()}\n"
        f"{attachment}"
    )
    assert len(raw) < DEFAULT_MAX_BYTES

    started = time.perf_counter()
    result = classify(raw)
    elapsed = time.perf_counter() - started

    assert result.kind is InboundKind.BOUNCE
    [entry] = result.recipients
    assert (entry.email, entry.status, entry.hard) == ("nobody@example.org", "5.1.1", True)
    assert result.references == ((CAMPAIGN, RECIPIENT),)
    assert elapsed < 5.0  # about 1 s; reading every returned line took 8 s


def test_the_limit_is_a_parameter() -> None:
    raw = reply(f"Subject: Re: x\nIn-Reply-To: <{OUR_ID}>\n")

    assert classify(raw, max_bytes=len(raw)).kind is InboundKind.REPLY
    assert classify(raw, max_bytes=len(raw) - 1).kind is InboundKind.UNPARSED


def test_a_broken_multipart_boundary_is_read_as_far_as_it_goes() -> None:
    good = dsn(block("nobody@example.org", "failed", "5.1.1"))
    wrong_boundary = good.replace(b'boundary="=_report_boundary"', b'boundary="nowhere"')
    unterminated = good.rsplit(b"--=_report_boundary--", 1)[0]
    truncated = good[: len(good) // 2]

    assert classify(unterminated).kind is InboundKind.BOUNCE
    assert classify(truncated).kind in (InboundKind.BOUNCE, InboundKind.OTHER)
    unsplit = classify(wrong_boundary)  # one body of text: no report part any more
    assert unsplit.kind in (InboundKind.BOUNCE, InboundKind.OTHER)
    assert unsplit.references == ((CAMPAIGN, RECIPIENT),)  # our id is still in the text


def test_line_breaks_smuggled_into_headers_are_removed() -> None:
    raw = reply(
        f"Subject: =?utf-8?q?Hi=0D=0ABcc=3A_evil=40example=2Ecom?=\nIn-Reply-To: <{OUR_ID}>\n"
    ).replace(b"Alice Example", b"=?utf-8?q?A=0D=0AX-Injected=3A_1?=")

    result = classify(raw)

    assert result.kind is InboundKind.REPLY
    assert result.subject == "Hi Bcc: evil@example.com"
    assert_single_lines(result)


def test_line_breaks_in_report_fields_are_removed() -> None:
    raw = dsn(
        block(
            "nobody@example.org",
            "failed",
            "5.1.1",
            "smtp; 550 5.1.1 =?utf-8?q?a=0D=0Ab?= \u2028 unknown\x85 user",
        )
    )

    result = classify(raw)

    assert result.kind is InboundKind.BOUNCE
    assert_single_lines(result)


def test_deeply_nested_multiparts_do_not_exhaust_the_stack() -> None:
    depth = 3000
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)
    )
    raw = crlf(f"From: x@example.org\nSubject: nest\n{opening}\nhello\n")

    result = classify(raw)

    assert isinstance(result.kind, InboundKind)
    assert_single_lines(result)


def test_a_garbage_delivery_status_part_does_not_raise() -> None:
    raw = dsn(block("nobody@example.org", "failed", "5.1.1")).replace(
        b"Reporting-MTA: dns; mx.sender.example", b"\x00\xff" * 500 + b"\r\n:\r\n;;;"
    )

    result = classify(raw)

    assert result.kind is InboundKind.BOUNCE
    assert_single_lines(result)


def test_an_error_inside_the_classifier_becomes_unparsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(_msg: object) -> None:
        raise RecursionError("too deep")

    monkeypatch.setattr(report_parser, "read_report", broken)

    result = classify(dsn(block("nobody@example.org", "failed", "5.1.1")))

    assert result.kind is InboundKind.UNPARSED
    assert result.reason == "classifier failed: RecursionError: too deep"
