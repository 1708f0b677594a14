"""Encryption at rest for mailbox passwords (Fernet: AES-128-CBC + HMAC-SHA256).

The key is derived from the server secret with HKDF, so one `PIGEON_SECRET_KEY` serves
signing and encryption without the two ever sharing key material. During a rotation the
box holds one key per server secret (`SharedSettings.keys()`, current first): it encrypts
with the current one and decrypts with whichever fits (`MultiFernet`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_PURPOSE = "pigeon mailbox secrets v1"


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose, derived from the server secret."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(
        secret
    )


def derive_keys(secrets: Sequence[bytes], purpose: str) -> list[bytes]:
    """One key for `purpose` per server secret, in the same order (the current one first).
    Refuses an empty list, and a bare `bytes` passed where the list belongs."""
    if isinstance(secrets, bytes | str) or not secrets:
        raise TypeError("expected the server secrets, current first (SharedSettings.keys())")
    return [derive_key(secret, purpose) for secret in secrets]


class SecretBoxError(Exception):
    """Raised when a stored secret cannot be decrypted (wrong key or corrupted data)."""


class SecretBox:
    """Encrypts and decrypts short secrets such as SMTP and IMAP passwords."""

    def __init__(self, server_secrets: Sequence[bytes]) -> None:
        fernets = [
            Fernet(base64.urlsafe_b64encode(key))
            for key in derive_keys(server_secrets, KEY_PURPOSE)
        ]
        self._current = fernets[0]
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str | None) -> str:
        """The plaintext; "" when there is no stored secret (a relay without login, or a
        password dropped because its server changed)."""
        if token is None:
            return ""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretBoxError("stored secret cannot be decrypted with these keys") from None

    def is_current(self, token: str) -> bool:
        """True when `token` was encrypted with the current key (nothing to re-encrypt)."""
        try:
            self._current.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def reencrypt(self, token: str) -> str:
        """`token`'s plaintext encrypted again with the current key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretBoxError("stored secret cannot be decrypted with these keys") from None
