"""Message-IDs a bounce quotes: a Message-ID has the shape of an address, and is never a
failed recipient.

Collected from the fields that hold Message-IDs (Message-ID, In-Reply-To, References,
X-Message-ID, in any header: the bounce's, a returned message's, or quoted in a notice's
text; folded lines included) in the first `SCAN_BYTES` of the message; one of our own
Message-IDs
(`<campaign.recipient.nonce@domain>`) is never a recipient wherever it appears.
"""

from __future__ import annotations

import re

from pigeon_common.render.message_id import parse_message_id
from pigeon_imap_sync.inbound import BouncedRecipient

SCAN_BYTES = 512 * 1024
_ID_FIELD = re.compile(
    r"^[ \t>]*(?:message-id|in-reply-to|references|x-message-id|original-message-id)"
    r"[ \t]*:(?P<value>[^\n]*(?:\n[ \t]+[^\n]*)*)",
    re.IGNORECASE | re.MULTILINE,
)
_ANGLE = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


def message_ids(raw: bytes) -> frozenset[str]:
    """The case-folded Message-IDs quoted anywhere in the message."""
    text = raw[:SCAN_BYTES].decode("latin-1").replace("\r\n", "\n")
    return frozenset(
        m.casefold() for f in _ID_FIELD.finditer(text) for m in _ANGLE.findall(f["value"])
    )


def without_message_ids(
    recipients: tuple[BouncedRecipient, ...], raw: bytes
) -> tuple[BouncedRecipient, ...]:
    """`recipients` less those whose address is a Message-ID of the message."""
    if not recipients:
        return recipients
    ids = message_ids(raw)
    return tuple(
        entry
        for entry in recipients
        if entry.email.casefold() not in ids and parse_message_id(entry.email) is None
    )
