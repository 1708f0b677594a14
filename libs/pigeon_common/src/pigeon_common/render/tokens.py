"""Signed tracking tokens and the tracker URLs built from them (DESIGN §2, invariant 4).

A token carries the ids it speaks for plus an HMAC-SHA256 tag (truncated to 16 bytes)
over a purpose label and those ids, under a key derived from the server secret. The
purpose label differs per kind, so a token of one kind never verifies as another; a
link token also binds the campaign, recipient and link index, so it is useless on
another message. Tokens are unpadded base64url: URL-safe, never a '/'. Readers check
the exact length and alphabet, re-encode to refuse non-canonical spellings, and
compare tags in constant time.

Tokens are signed with the current server secret and accepted under any of the secrets
(`SharedSettings.keys()`, current first): links in mail sent before a rotation keep
working while the old secret is listed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import uuid
from collections.abc import Sequence

from pigeon_common.secrets_box import derive_keys

KEY_PURPOSE = "pigeon tracking v1"
MAC_BYTES = 16
MAX_LINKS = 1 << 16  # a link index is two bytes in its token

_MESSAGE = b"pigeon message\x00"
_UNSUBSCRIBE = b"pigeon unsubscribe\x00"
_LINK = b"pigeon link\x00"
_PURPOSES = (_MESSAGE, _UNSUBSCRIBE, _LINK)
_IDS_TOKEN_CHARS = 64  # 16 + 16 + 16 bytes
_LINK_TOKEN_CHARS = 24  # 2 + 16 bytes
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _encode(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _decode(token: str, chars: int) -> bytes | None:
    """The bytes of a well-formed token of `chars` characters, else None."""
    if not isinstance(token, str) or len(token) != chars or not _BASE64URL.fullmatch(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-chars % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _encode(raw) == token else None


_Macs = dict[bytes, hmac.HMAC]  # one keyed HMAC per purpose


def _tag(macs: _Macs, purpose: bytes, payload: bytes) -> bytes:
    mac = macs[purpose].copy()
    mac.update(payload)
    return mac.digest()[:MAC_BYTES]


class TrackingSigner:
    """Makes the tokens in open, click and unsubscribe URLs with the current server
    secret, and checks them against every secret given (current first)."""

    def __init__(self, server_secrets: Sequence[bytes]) -> None:
        # One keyed HMAC per purpose and key, copied per token: the key schedule is paid
        # once. The current key's come first; the others are tried only when it fails.
        self._keys: list[_Macs] = [
            {purpose: hmac.new(key, purpose, "sha256") for purpose in _PURPOSES}
            for key in derive_keys(server_secrets, KEY_PURPOSE)
        ]
        self._macs = self._keys[0]

    def _mac(self, purpose: bytes, payload: bytes) -> bytes:
        return _tag(self._macs, purpose, payload)

    def _genuine(self, purpose: bytes, payload: bytes, tag: bytes) -> bool:
        """True when `tag` is the tag of `payload` under one of the keys."""
        return any(hmac.compare_digest(tag, _tag(m, purpose, payload)) for m in self._keys)

    def _ids_token(self, purpose: bytes, campaign_id: uuid.UUID, recipient_id: uuid.UUID) -> str:
        ids = campaign_id.bytes + recipient_id.bytes
        return _encode(ids + self._mac(purpose, ids))

    def _read_ids_token(self, purpose: bytes, token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
        raw = _decode(token, _IDS_TOKEN_CHARS)
        if raw is None:
            return None
        ids, tag = raw[:32], raw[32:]
        if not self._genuine(purpose, ids, tag):
            return None
        return uuid.UUID(bytes=ids[:16]), uuid.UUID(bytes=ids[16:])

    def message_token(self, campaign_id: uuid.UUID, recipient_id: uuid.UUID) -> str:
        """The token naming one message (open pixel and the first part of click URLs)."""
        return self._ids_token(_MESSAGE, campaign_id, recipient_id)

    def read_message_token(self, token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(campaign_id, recipient_id) of a genuine message token, None otherwise."""
        return self._read_ids_token(_MESSAGE, token)

    def unsubscribe_token(self, campaign_id: uuid.UUID, recipient_id: uuid.UUID) -> str:
        """The token of one message's unsubscribe URL (a purpose of its own)."""
        return self._ids_token(_UNSUBSCRIBE, campaign_id, recipient_id)

    def read_unsubscribe_token(self, token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(campaign_id, recipient_id) of a genuine unsubscribe token, None otherwise."""
        return self._read_ids_token(_UNSUBSCRIBE, token)

    def link_token(self, campaign_id: uuid.UUID, recipient_id: uuid.UUID, link_index: int) -> str:
        """The token of link `link_index` in this one message."""
        return self._link_token(campaign_id.bytes + recipient_id.bytes, link_index)

    def _link_token(self, ids: bytes, link_index: int) -> str:
        if not 0 <= link_index < MAX_LINKS:
            raise ValueError(f"link index must be in 0..{MAX_LINKS - 1}")
        index = link_index.to_bytes(2, "big")
        return _encode(index + self._mac(_LINK, ids + index))

    def read_link_token(
        self, campaign_id: uuid.UUID, recipient_id: uuid.UUID, token: str
    ) -> int | None:
        """The link index of a genuine link token of this message, None otherwise."""
        raw = _decode(token, _LINK_TOKEN_CHARS)
        if raw is None:
            return None
        index, tag = raw[:2], raw[2:]
        if not self._genuine(_LINK, campaign_id.bytes + recipient_id.bytes + index, tag):
            return None
        return int.from_bytes(index, "big")


class TrackingUrls:
    """The tracker URLs of one message (paths as in DESIGN §4)."""

    __slots__ = ("_ids", "_signer", "base", "message_token", "open_url", "unsubscribe_url")

    def __init__(
        self, base: str, signer: TrackingSigner, campaign_id: uuid.UUID, recipient_id: uuid.UUID
    ) -> None:
        self.base = base.rstrip("/")
        self._signer = signer
        self._ids = campaign_id.bytes + recipient_id.bytes  # what every link token signs
        self.message_token = signer.message_token(campaign_id, recipient_id)
        unsubscribe = signer.unsubscribe_token(campaign_id, recipient_id)
        self.open_url = f"{self.base}/campaigns/o/{self.message_token}/p.png"
        self.unsubscribe_url = f"{self.base}/campaigns/unsub/{unsubscribe}/"

    def click_url(self, link_index: int) -> str:
        """The signed redirect URL of registered link `link_index`."""
        link = self._signer._link_token(self._ids, link_index)
        return f"{self.base}/campaigns/t/{self.message_token}/r/{link}/"


def tracking_urls(
    base: str, signer: TrackingSigner, campaign_id: uuid.UUID, recipient_id: uuid.UUID
) -> TrackingUrls:
    """Open, unsubscribe and click URLs of one message under tracker base `base`."""
    return TrackingUrls(base, signer, campaign_id, recipient_id)
