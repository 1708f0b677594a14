"""Addresses and header text: what may reach an SMTP envelope or a mail header."""

from __future__ import annotations

import random
import uuid

import pytest
from email_validator import EmailNotValidError, validate_email

from pigeon_common.validation import (
    InvalidAddressError,
    address_key,
    header_safe,
    normalize_address,
    recipient_id,
)

LONG_DOMAIN = "a" * 63 + "." + "b" * 63 + "." + "c" * 57 + ".com"  # 189 characters


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("Alice.Smith+tag@Example.COM", "Alice.Smith+tag@example.com"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("user_name-1@sub.domain.co.uk", "user_name-1@sub.domain.co.uk"),
        ("x!#$%&*/=?^`{|}~@example.museum", "x!#$%&*/=?^`{|}~@example.museum"),
        ("a@b.example", "a@b.example"),
        ("a@b.c", "a@b.c"),
        ("  bob@example.org \t", "bob@example.org"),
        ("bob@example.org\n", "bob@example.org"),
        ("x" * 64 + "@example.com", "x" * 64 + "@example.com"),
        ("x" * 64 + "@" + LONG_DOMAIN, "x" * 64 + "@" + LONG_DOMAIN),  # exactly 254
        ("user@Bücher.DE", "user@xn--bcher-kva.de"),
        ("user@XN--BCHER-KVA.de", "user@xn--bcher-kva.de"),
        ("user@1-2.example.org", "user@1-2.example.org"),
    ],
)
def test_valid_addresses(raw: str, expected: str) -> None:
    assert normalize_address(raw) == expected


INVALID = [
    "",
    "   ",
    # shape
    "alice.example.com",
    "a@b@example.com",
    "@example.com",
    "alice@",
    "a..b@example.com",
    "a@example..com",
    ".a@example.com",
    "a.@example.com",
    "a@.example.com",
    "a@example.com.",
    "a@-example.com",
    "a@sub.-x.com",
    "a@example-.com",
    "a@example.123",
    "a@localhost",
    "a@com",
    # reserved labels (RFC 5890 R-LDH) and Punycode that does not decode
    "a@ab--cd.com",
    "a@mail.x1--y.org",
    "a@xn--abc.com",
    # special-use names
    "a@example.test",
    "a@EXAMPLE.TEST",
    "a@foo.localhost",
    "a@printer.local",
    "a@x.invalid",
    "a@hidden.onion",
    "a@1.0.0.127.in-addr.arpa",
    # lengths
    "x" * 65 + "@example.com",
    "é" * 65 + "@example.com",
    # a non-ASCII local part needs SMTPUTF8, which the sender does not speak
    "josé@example.com",
    "straße@example.com",
    "用户@例子.example.com",
    "x" * 64 + "@" + LONG_DOMAIN + "m",  # 255
    "x@" + "a" * 64 + ".com",
    "x@" + ".".join(["a" * 60] * 5) + ".com",
    # line breaks and control characters inside
    "alice@example.com\r\nBcc: eve@example.com",
    "alice\n@example.com",
    "ali\rce@example.com",
    "alice@exa\nmple.com",
    "alice\x00@example.com",
    "alice@example.com\x00eve@example.org",
    "ali\tce@example.com",
    # spaces
    "alice smith@example.com",
    "alice @example.com",
    "alice@exam ple.com",
    # display names and comments
    "Bob <bob@example.com>",
    "<bob@example.com>",
    '"Bob" <bob@example.com>',
    "alice(comment)@example.org",
    "alice@example.org(comment)",
    # CVE-2023-27043 style: one string, two addresses
    "alice@example.org)<bob@example.org>",
    '"alice@example.org"@evil.example.com',
    "alice@example.org,bob@example.org",
    "alice@example.org;bob@example.org",
    "alice@example.org bob@example.org",
    "alice@example.org<bob@example.org>",
    # quoted local parts and domain literals
    '"alice"@example.org',
    '"a b"@example.org',
    '"a\\"b"@example.org',
    "a@[127.0.0.1]",
    "a@[IPv6:::1]",
]


@pytest.mark.parametrize("raw", INVALID)
def test_invalid_addresses(raw: str) -> None:
    with pytest.raises(InvalidAddressError) as caught:
        normalize_address(raw)
    assert str(caught.value)  # says why


def test_invalid_address_error_is_a_value_error() -> None:
    assert issubclass(InvalidAddressError, ValueError)


def test_punycode_and_unicode_spellings_are_one_address() -> None:
    # Otherwise the same mailbox gets two recipient ids, and two messages.
    assert normalize_address("a@xn--bcher-kva.com") == normalize_address("a@bücher.com")


# --- the fast path against email-validator ----------------------------------------------

SEED = 27043
CANDIDATES = 24_000
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ODD = ' "(),:;<>[]\\\t\r\n\x00\x7féßüİ\u212a\uff0e\u2028ａ'
_ATEXT_EXTRA = "!#$%&'*/=?^`{|}~"
_TLDS = (
    *("com", "org", "io", "de", "museum", "travel", "COM", "Org", "uk", "a", "c0m", "123"),
    *("test", "example", "localhost", "local", "invalid", "onion", "arpa", "xn--p1ai", "xn--zz"),
)


class _Alphabet:
    """Characters drawn with weights given per group of characters."""

    def __init__(self, *groups: tuple[str, int]) -> None:
        self.chars = [c for chars, _ in groups for c in chars]
        weights = [weight / len(chars) for chars, weight in groups for _ in chars]
        self.cum_weights = [sum(weights[: i + 1]) for i in range(len(weights))]

    def draw(self, rng: random.Random, lo: int, hi: int) -> str:
        k = rng.randint(lo, hi)
        return "".join(rng.choices(self.chars, cum_weights=self.cum_weights, k=k))


_LOCAL = _Alphabet(
    (_LOWER, 60),
    (_LOWER.upper(), 8),
    ("0123456789", 10),
    (".", 5),
    ("-_+", 8),
    (_ATEXT_EXTRA, 3),
    ("@", 1),
    (_ODD, 1),
)
_LABEL = _Alphabet(
    (_LOWER, 70),
    (_LOWER.upper(), 6),
    ("0123456789", 10),
    ("-", 10),
    (".", 1),
    ("_+", 1),
    (_ODD, 1),
)
_PUNY = _Alphabet((_LOWER, 9), ("0123456789-", 1))
_LETTERS = _Alphabet((_LOWER, 1))
_NOISE = _Alphabet(
    (_LOWER, 40),
    ("0123456789", 8),
    (".-_+", 12),
    ("@", 6),
    (_ODD, 6),
    (_ATEXT_EXTRA, 4),
    (_LOWER.upper(), 4),
)
_EVERY = _LOWER + "0123456789.-_+@" + _ATEXT_EXTRA + _ODD


def _local(rng: random.Random) -> str:
    return _LOCAL.draw(rng, 1, rng.choice([12, 12, 12, 40, 70]))


def _label(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.04:
        return "xn--" + _PUNY.draw(rng, 1, 10)
    if roll < 0.08:
        return _LETTERS.draw(rng, 2, 2) + "--" + _LETTERS.draw(rng, 1, 5)
    if roll < 0.10:
        return "a" * rng.randint(60, 66)
    return _LABEL.draw(rng, 1, 12)


def _tld(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(_TLDS)
    return _LETTERS.draw(rng, 2, 26)


def _structured(rng: random.Random) -> str:
    labels = [_label(rng) for _ in range(rng.choice([1, 1, 1, 2, 2, 3]))]
    if rng.random() < 0.01:
        labels += ["d" * 63] * 3
    return _local(rng) + "@" + ".".join([*labels, _tld(rng)])


def _mutated(rng: random.Random) -> str:
    text = list(_structured(rng))
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(text) + 1)
        action = rng.choice(["insert", "delete", "replace", "double"])
        if action == "insert":
            text.insert(at, rng.choice(_EVERY))
        elif text and at < len(text):
            if action == "delete":
                del text[at]
            elif action == "replace":
                text[at] = rng.choice(_EVERY)
            else:
                text.insert(at, text[at])
    if rng.random() < 0.1:
        text.insert(0, rng.choice(" \t\n"))
    return "".join(text)


def _noise(rng: random.Random) -> str:
    return _NOISE.draw(rng, 0, 30)


def candidates(count: int = CANDIDATES) -> list[str]:
    rng = random.Random(SEED)
    makers = [_structured] * 5 + [_mutated] * 4 + [_noise]
    return [rng.choice(makers)(rng) for _ in range(count)]


def _ours(raw: str) -> str | None:
    try:
        return normalize_address(raw)
    except InvalidAddressError:
        return None


def _theirs(raw: str) -> str | None:
    # normalize_address trims surrounding whitespace first; the rest must be the library's.
    # Then: an ASCII local part only, and the domain in its lower-case ASCII form.
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    if not str(result.local_part).isascii():
        return None
    return f"{result.local_part}@{str(result.ascii_domain).lower()}"


def _disagrees(ours: str | None, theirs: str | None) -> bool:
    if ours is not None:
        return ours != theirs  # accepted: email-validator accepts it too, written the same
    # Refused although email-validator accepts it: only for a local part over 64 characters
    # (RFC 5321 4.5.3.1.1), which email-validator checks only in strict mode.
    return theirs is not None and len(theirs.rpartition("@")[0]) <= 64


def test_normalize_address_agrees_with_email_validator() -> None:
    pool = candidates()
    assert len(set(pool)) >= 20_000
    accepted = refused = 0
    disagreements: list[tuple[str, str | None, str | None]] = []
    for raw in pool:
        ours, theirs = _ours(raw), _theirs(raw)
        if _disagrees(ours, theirs):
            disagreements.append((raw, ours, theirs))
        elif ours is None:
            refused += 1
        else:
            accepted += 1
    # Both sides of the comparison are well exercised, or the test proves nothing.
    assert accepted >= 4_000 and refused >= 4_000, (accepted, refused)
    shown = "\n".join(f"  {raw!r}: ours={o!r} email-validator={t!r}" for raw, o, t in disagreements)
    assert not disagreements, f"{len(disagreements)} disagreements, e.g.:\n{shown[:3000]}"


def test_candidates_are_deterministic() -> None:
    assert candidates(2_000) == candidates(2_000)


# --- recipient ids -----------------------------------------------------------------------

CAMPAIGN = uuid.UUID("2a6f4a4e-6b0f-4f52-9c1e-1d2a3b4c5d6e")


def test_recipient_id_is_stable() -> None:
    # Pinned: changing the namespace or the name format would split every stored campaign.
    assert recipient_id(CAMPAIGN, "bob@example.com") == uuid.uuid5(
        uuid.UUID("6f2c1d4e-2b7a-4c55-9f0e-8d3b2a1c7e90"), f"{CAMPAIGN}:bob@example.com"
    )
    assert recipient_id(CAMPAIGN, "bob@example.com") == recipient_id(CAMPAIGN, "bob@example.com")


def test_recipient_id_ignores_case() -> None:
    ids = {
        recipient_id(CAMPAIGN, address)
        for address in ("bob@example.com", "Bob@Example.com", "BOB@EXAMPLE.COM")
    }
    assert len(ids) == 1
    assert address_key("Bob@Example.COM") == address_key("bob@example.com")


def test_non_ascii_local_part_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidAddressError, match="SMTPUTF8"):
        normalize_address("jörg@example.com")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("strasse@example.com", "straße@example.com"),  # no Unicode case folding
        ("STRASSE@example.com", "straße@example.com"),
        ("Kelvin@example.com", "kelvin@example.com"),  # KELVIN SIGN is not K
        ("ǅ@example.com", "ǆ@example.com"),  # titlecase digraph: no Unicode lowering
        ("bob@bücher.de", "bob@bucher.de"),
        ("bob@straße.de", "bob@strasse.de"),  # IDNA 2008 keeps ß in a domain
    ],
)
def test_distinct_mailboxes_keep_distinct_keys(one: str, other: str) -> None:
    assert address_key(one) != address_key(other)
    assert recipient_id(CAMPAIGN, one) != recipient_id(CAMPAIGN, other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Bob.Lee@Example.COM", "bob.lee@example.com"),
        ("bob@Bücher.DE", "bob@xn--bcher-kva.de"),
        ("bob@BÜCHER.de", "bob@bücher.de"),
    ],
)
def test_same_mailbox_spellings_share_a_key(one: str, other: str) -> None:
    assert address_key(one) == address_key(other)


def test_ascii_keys_are_the_case_folded_ones_stored_ids_came_from() -> None:
    # Ids derived before the key stopped case folding must not change for ASCII input.
    for address in ("Bob@Example.COM", "x!#$%&*/=?^`{|}~@EXAMPLE.museum", "A+b@c.IO"):
        assert address_key(address) == address.casefold()


def test_recipient_id_differs_by_address_and_campaign() -> None:
    other = uuid.UUID("3a6f4a4e-6b0f-4f52-9c1e-1d2a3b4c5d6e")
    assert recipient_id(CAMPAIGN, "bob@example.com") != recipient_id(CAMPAIGN, "rob@example.com")
    assert recipient_id(CAMPAIGN, "bob@example.com") != recipient_id(other, "bob@example.com")


# --- header text -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "Zoë O'Brien", "Ünïcödé 名前 — ok", "x" * 200])
def test_header_safe_accepts_plain_text(value: str) -> None:
    assert header_safe(value, "name", 200) == value


@pytest.mark.parametrize(
    "value",
    [
        "Bob\r\nBcc: eve@example.com",
        "Bob\nBcc: eve@example.com",
        "Bob\rX",
        "Bob\x00",
        "\x00",
        "Bob\tSmith",
        "Bob\x1bSmith",
        "Bob\x7f",
    ],
)
def test_header_safe_refuses_control_characters(value: str) -> None:
    with pytest.raises(ValueError, match="name"):
        header_safe(value, "name", 200)


@pytest.mark.parametrize("value", ["Bob\u2028Bcc: x", "Bob\u2029x", "Bob\x85x"])
def test_header_safe_refuses_unicode_line_breaks(value: str) -> None:
    # Python's email package splits header values on these too (str.splitlines) and
    # refuses them when the message is built, so they cannot go into a mail header.
    with pytest.raises(ValueError, match="name"):
        header_safe(value, "name", 200)


def test_header_safe_refuses_overlong_values() -> None:
    assert header_safe("x" * 78, "subject", 78) == "x" * 78
    with pytest.raises(ValueError, match="subject"):
        header_safe("x" * 79, "subject", 78)


def test_recipient_ids_match_recipient_id() -> None:
    from pigeon_common.validation import RecipientIds

    campaign = uuid.UUID("12345678-1234-5678-1234-567812345678")
    ids = RecipientIds(campaign)
    for address in ("a@example.com", "Ann.Lee+x@Example.ORG", "jose@bücher.example.com"):
        assert ids(address) == recipient_id(campaign, address)
        assert ids.text(address) == str(recipient_id(campaign, address))
