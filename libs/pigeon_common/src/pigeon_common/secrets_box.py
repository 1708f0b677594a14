"""Encryption at rest for mailbox passwords (Fernet: AES-128-CBC + HMAC-SHA256).

The key is derived from the server secret with HKDF, so one `PIGEON_SECRET_KEY` serves
signing and encryption without the two ever sharing key material.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose, derived from the server secret."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(
        secret
    )


class SecretBoxError(Exception):
    """Raised when a stored secret cannot be decrypted (wrong key or corrupted data)."""


class SecretBox:
    """Encrypts and decrypts short secrets such as SMTP and IMAP passwords."""

    def __init__(self, server_secret: bytes) -> None:
        key = derive_key(server_secret, "pigeon mailbox secrets v1")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

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
            raise SecretBoxError("stored secret cannot be decrypted with this key") from None
