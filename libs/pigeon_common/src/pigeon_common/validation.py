"""Input rules shared by every entry point: addresses and header-safe text.

Addresses are checked by email-validator; the plain ASCII shape that nearly every real
list consists of is first matched by a stricter regular expression, which accepts only
what email-validator accepts too (a unit test holds the two together), so a 100,000-row
import does not pay 50 µs per address.
"""

from __future__ import annotations

import hashlib
import re
import string
import uuid

import idna
from email_validator import EmailNotValidError, validate_email

MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
# Control characters: CR and LF would split a header; the rest have no place in one.
# NEL, LS and PS count too: Python's email package splits header values on them.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_FAST_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}"
)
# email-validator refuses these top-level names (RFC 6761 special-use and similar).
# RFC 5891 reserves labels with "--" in positions 3-4 (Punycode "xn--" among them): the
# slow path decodes or refuses those.
_RESERVED_LABEL = re.compile(r"(?:^|\.)[^.]{2}--")
_SPECIAL_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test", "example"})
RECIPIENT_NAMESPACE = uuid.UUID("6f2c1d4e-2b7a-4c55-9f0e-8d3b2a1c7e90")


class InvalidAddressError(ValueError):
    """Raised for an address that cannot be sent to; the message says why."""


def normalize_address(raw: str) -> str:
    """A validated address with its domain lower-cased, or InvalidAddressError."""
    candidate = raw.strip()
    if not candidate:
        raise InvalidAddressError("the address is empty")
    if len(candidate) > MAX_ADDRESS_LENGTH:
        raise InvalidAddressError(f"the address is longer than {MAX_ADDRESS_LENGTH} characters")
    if _FAST_ADDRESS.fullmatch(candidate):
        local, _, domain = candidate.rpartition("@")
        tld = domain.rsplit(".", 1)[-1].lower()
        if (
            len(local) <= MAX_LOCAL_PART_LENGTH
            and tld not in _SPECIAL_TLDS
            and not _RESERVED_LABEL.search(domain)
        ):
            return f"{local}@{domain.lower()}"
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddressError(str(exc)) from None
    local = str(result.local_part)
    if not local.isascii():
        # Sending it needs SMTPUTF8 end to end, which the sender does not speak: refused
        # here rather than accepted and failed at send time.
        raise InvalidAddressError(
            "the part before the @-sign has non-ASCII characters; MC Pigeon sends without "
            "SMTPUTF8, so only ASCII local parts are accepted"
        )
    if len(local) > MAX_LOCAL_PART_LENGTH:
        # RFC 5321 §4.5.3.1.1; email-validator checks it only in strict mode.
        raise InvalidAddressError(
            f"the part before the @-sign is longer than {MAX_LOCAL_PART_LENGTH} characters"
        )
    # The domain in its ASCII (IDNA) form: what SMTP carries, and one spelling per domain.
    return f"{local}@{str(result.ascii_domain).lower()}"


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _domain_key(domain: str) -> str:
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return domain.lower()


def address_key(address: str) -> str:
    """The form two addresses are compared in to merge duplicates: the local part with
    only its ASCII letters lower-cased (README: addresses merge case-insensitively) and
    the domain in lower-case IDNA form. No Unicode case folding: `straße@x` and
    `strasse@x` are different mailboxes. For ASCII addresses this equals the case-folded
    form that earlier ids were derived from, so stored recipient ids do not change."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address.translate(_ASCII_LOWER)
    return f"{local.translate(_ASCII_LOWER)}@{_domain_key(domain)}"


def recipient_id(campaign_id: uuid.UUID, address: str) -> uuid.UUID:
    """Stable id of an address within a campaign: the same address, the same recipient."""
    return uuid.uuid5(RECIPIENT_NAMESPACE, f"{campaign_id}:{address_key(address)}")


class RecipientIds:
    """`recipient_id` for many addresses of one campaign, hashing the shared prefix once
    (a 100,000-row import spends half as long on ids)."""

    def __init__(self, campaign_id: uuid.UUID) -> None:
        self._prefix = hashlib.sha1(  # UUIDv5 is defined on SHA-1
            RECIPIENT_NAMESPACE.bytes + f"{campaign_id}:".encode(), usedforsecurity=False
        )

    def __call__(self, address: str) -> uuid.UUID:
        return uuid.UUID(self.text(address))

    def text(self, address: str) -> str:
        """The id in its canonical text form, built without a UUID object (faster)."""
        digest = self._prefix.copy()
        digest.update(address_key(address).encode())
        raw = bytearray(digest.digest()[:16])
        raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def header_safe(value: str, field: str, max_length: int) -> str:
    """The value if it can go into a mail header; ValueError naming the field otherwise."""
    if CONTROL_CHARACTERS.search(value):
        raise ValueError(f"{field} must not contain line breaks or control characters")
    if len(value) > max_length:
        raise ValueError(f"{field} must be at most {max_length} characters")
    return value
