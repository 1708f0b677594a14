"""Message-IDs that name their campaign and recipient, and the per-message nonce.

`<campaignId.recipientId.random@domain>` (DESIGN §3): a bounce or a reply quoting it
leads back to the message without a lookup table. The random part makes every send
unique; the same nonce also names the MIME boundary, so a message is a pure function
of its inputs when a caller passes `nonce` (tests and the two render paths do).
"""

from __future__ import annotations

import re
import secrets
import uuid

_NONCE = re.compile(r"[A-Za-z0-9]{1,32}")
_MESSAGE_ID = re.compile(
    r"<?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"\.[A-Za-z0-9]+@[^>\s]+>?"
)


def new_nonce(nonce: str | None = None) -> str:
    """`nonce` checked (letters and digits, at most 32), or a fresh random one."""
    if nonce is None:
        return secrets.token_hex(8)
    if not _NONCE.fullmatch(nonce):
        raise ValueError("nonce must be 1 to 32 letters or digits")
    return nonce


def make_message_id(
    campaign_id: uuid.UUID, recipient_id: uuid.UUID, nonce: str, domain: str
) -> str:
    """The Message-ID without angle brackets."""
    return f"{campaign_id}.{recipient_id}.{nonce}@{domain}"


def parse_message_id(value: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(campaign_id, recipient_id) of a Message-ID made here, None for any other."""
    match = _MESSAGE_ID.fullmatch(value.strip())
    if match is None:
        return None
    return uuid.UUID(match.group(1)), uuid.UUID(match.group(2))


def mime_boundary(nonce: str) -> str:
    """The multipart boundary: "=_" cannot occur in quoted-printable or base64 output."""
    return f"=_pigeon_{nonce}"
