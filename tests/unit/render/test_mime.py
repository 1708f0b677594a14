"""The fast path's wire format, as the standard library's parser reads it."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from datetime import UTC, datetime

import pytest

from pigeon_common.render import compile_campaign, parse_message_id, render_exact
from pigeon_common.validation import InvalidAddressError
from tests.unit.render.helpers import BASE, CAMPAIGN_ID, SIGNER, campaign, parse, recipient

NOW = datetime(2025, 11, 24, 9, 30, tzinfo=UTC)


def test_message_parses_into_alternative_parts() -> None:
    person = recipient("Ada Lovelace")
    message = compile_campaign(campaign("Hello **{{ recipient.name }}**"), SIGNER).render(
        person, now=NOW, nonce="abc123"
    )
    read = parse(message)
    assert read.message.get_content_type() == "multipart/alternative"
    for part in read.parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert read.text == message.text and read.html == message.html
    assert "Hello Ada Lovelace" in read.text and "<strong>Ada Lovelace</strong>" in read.html
    headers = read.headers
    assert headers["From"] == "Pigeon News <news@example.com>"
    assert headers["To"] == "Ada Lovelace <ada@example.org>"
    assert headers["Subject"] == "News for Ada Lovelace" == message.subject
    assert headers["Date"] == "Mon, 24 Nov 2025 09:30:00 +0000"
    assert headers["MIME-Version"] == "1.0"
    mid = f"{CAMPAIGN_ID}.{person.recipient_id}.abc123@example.com"
    assert message.message_id == mid and headers["Message-ID"] == f"<{mid}>"
    assert parse_message_id(headers["Message-ID"]) == (CAMPAIGN_ID, person.recipient_id)
    unsubscribe = SIGNER.unsubscribe_token(CAMPAIGN_ID, person.recipient_id)
    assert headers["List-Unsubscribe"] == f"<{BASE}/campaigns/unsub/{unsubscribe}/>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers == message.headers
    assert b"\r\nList-Unsubscribe: <https://" in message.raw  # never an encoded word


def test_random_part_differs_per_render() -> None:
    compiled = compile_campaign(campaign(), SIGNER)
    first, second = (compiled.render(recipient()) for _ in range(2))
    assert first.message_id != second.message_id
    assert re.fullmatch(
        r"[0-9a-f-]{36}\.[0-9a-f-]{36}\.[0-9a-f]{16}@example\.com", first.message_id
    )


@pytest.mark.parametrize("nonce", ["", "a.b", "x" * 33, "sp ace", "ü"])
def test_bad_nonce_refused(nonce: str) -> None:
    with pytest.raises(ValueError):
        compile_campaign(campaign(), SIGNER).render(recipient(), nonce=nonce)


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.com",
        "Eve\nX-Evil: 1",
        "Eve\rX: 1",
        "Eve\u2028X: 1",
        "Eve\x85X: 1",
    ],
)
def test_no_header_injection_from_data(name: str) -> None:
    spec = campaign(subject="Hi {{ recipient.name }}\r\nX-Injected: yes")
    message = compile_campaign(spec, SIGNER).render(recipient(name), nonce="n1")
    read = parse(message)
    assert "Bcc" not in read.message and "X-Evil" not in read.message
    assert "X" not in read.message and "X-Injected" not in read.message
    assert "\n" not in read.headers["Subject"] and "\r" not in read.headers["Subject"]
    assert read.message["To"].addresses[0].addr_spec == "ada@example.org"
    for value in message.headers.values():
        assert not re.search("[\r\n\x85\u2028\u2029]", value)


def test_no_list_unsubscribe_without_tracker() -> None:
    message = compile_campaign(campaign(public_base_url=None), SIGNER).render(recipient())
    read = parse(message)
    assert "List-Unsubscribe" not in read.message and "List-Unsubscribe-Post" not in read.message


def test_mostly_non_ascii_body_goes_base64() -> None:
    markdown = "Привет, {{ recipient.name }}! " + "Это письмо написано по-русски. " * 40
    spec = campaign(markdown)
    message = compile_campaign(spec, SIGNER).render(recipient("Анна"), now=NOW, nonce="r1")
    read = parse(message)
    assert [part["Content-Transfer-Encoding"] for part in read.parts] == ["base64", "base64"]
    assert read.text == message.text and "Привет, Анна!" in read.text
    exact = render_exact(spec, SIGNER, recipient("Анна"), now=NOW, nonce="r1")
    assert (exact.text, exact.html, exact.headers) == (message.text, message.html, message.headers)


def test_long_lines_are_wrapped_and_restored() -> None:
    value = "word " * 500 + "x" * 3000
    message = compile_campaign(campaign("{{ recipient.note }}"), SIGNER).render(
        recipient(note=value)
    )
    body = message.raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert value.strip() in parse(message).text


@pytest.mark.parametrize(
    "name",
    [
        "Zoë Ünïcødé",
        "李小龍",
        "🎉 Party",
        'O\'Brien, "The" <Boss>',
        "Bob J. Smith",
        "=?utf-8?q?x?=",
    ],
)
def test_display_names_round_trip(name: str) -> None:
    spec = campaign(from_name=name)
    message = compile_campaign(spec, SIGNER).render(recipient(name))
    read = parse(message).message
    assert read["To"].addresses[0].display_name == name
    assert read["From"].addresses[0].display_name == name
    assert str(read["To"]) == message.headers["To"]


def test_subject_that_looks_encoded_stays_literal() -> None:
    spec = campaign(subject="{{ recipient.name }}")
    message = compile_campaign(spec, SIGNER).render(recipient("=?utf-8?b?SGk=?= there"))
    assert str(parse(message).message["Subject"]) == "=?utf-8?b?SGk=?= there"


def test_addresses_checked() -> None:
    compiled = compile_campaign(campaign(), SIGNER)
    for bad in [
        "no-at-sign",
        "a b@example.com",
        "x@example.com\r\nBcc: y@z.com",
        "jörg@example.com",
        "x@-bad-.com",
    ]:
        with pytest.raises(InvalidAddressError):
            compiled.render(recipient(email_address=bad))
    with pytest.raises(InvalidAddressError):
        compile_campaign(campaign(from_address="bad address"), SIGNER)
    message = compiled.render(recipient(email_address="jorg@bücher.example"))
    assert parse(message).message["To"].addresses[0].domain == "xn--bcher-kva.example"
    # SMTP gets the same ASCII form: RCPT TO must not carry UTF-8 without SMTPUTF8.
    assert message.envelope_to == "jorg@xn--bcher-kva.example"
    assert message.envelope_from == parse(message).message["From"].addresses[0].addr_spec


def test_parse_message_id_refuses_others() -> None:
    assert parse_message_id("<abc@example.com>") is None
    assert parse_message_id(f"<{uuid.uuid4()}.{uuid.uuid4()}.x@example.com>") is not None


def test_stdlib_policy_reads_raw_without_defects() -> None:
    message = compile_campaign(campaign("Hi {{ recipient.name }}"), SIGNER).render(recipient("Zoë"))
    parsed = email.message_from_bytes(message.raw, policy=email.policy.strict)
    assert not parsed.defects and all(not part.defects for part in parsed.walk())
