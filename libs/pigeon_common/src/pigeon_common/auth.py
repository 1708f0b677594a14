"""Users' credentials: argon2 password hashes and personal access tokens.

Each user has two tokens: the read-write `pgn_<user id>_<mac>` and the read-only
`pgr_<user id>_<mac>`, where mac = HMAC-SHA256(key, scope, user id, token epoch,
password hash). Neither is stored: they are recomputed to check them, so changing the
password (a new hash) or bumping the epoch (revoke) invalidates every earlier token.
A token is made with the current server secret and accepted under any of the secrets
(`SharedSettings.keys()`), so a rotation ends no token while the old secret is listed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pigeon_common.domain.access import Scope
from pigeon_common.secrets_box import derive_keys

TOKEN_PREFIX = "pgn"  # noqa: S105 - a prefix, not a secret
READ_ONLY_PREFIX = "pgr"
_PREFIXES = {TOKEN_PREFIX: Scope.WRITE, READ_ONLY_PREFIX: Scope.READ}
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
_USER_ID = re.compile(r"[0-9a-f]{32}")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TokenClaim:
    """What a token says about itself before it is checked against the user's row."""

    user_id: uuid.UUID
    mac: str
    scope: Scope = Scope.WRITE


class TokenSigner:
    """Derives personal access tokens with the current server secret and checks them
    against every secret given (current first)."""

    def __init__(self, server_secrets: Sequence[bytes]) -> None:
        self._keys = derive_keys(server_secrets, "pigeon personal access tokens v1")

    def _mac(
        self, key: bytes, user_id: uuid.UUID, epoch: int, password_hash: str, scope: Scope
    ) -> str:
        # The read-write form is the one tokens had before scopes, so they stay valid.
        label = "" if scope is Scope.WRITE else f"{scope}:"
        message = f"{label}{user_id}:{epoch}:{password_hash}".encode()
        digest = hmac.new(key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def token_for(
        self, user_id: uuid.UUID, epoch: int, password_hash: str, scope: Scope = Scope.WRITE
    ) -> str:
        prefix = TOKEN_PREFIX if scope is Scope.WRITE else READ_ONLY_PREFIX
        mac = self._mac(self._keys[0], user_id, epoch, password_hash, scope)
        return f"{prefix}_{user_id.hex}_{mac}"

    def verify(self, claim: TokenClaim, epoch: int, password_hash: str) -> bool:
        return any(
            hmac.compare_digest(
                self._mac(key, claim.user_id, epoch, password_hash, claim.scope).encode(),
                claim.mac.encode(),
            )
            for key in self._keys
        )


def parse_token(token: str) -> TokenClaim | None:
    """Split a token into its claim, or None when it is not shaped like one of ours."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] not in _PREFIXES or len(parts[2]) != 43:
        return None
    if not _USER_ID.fullmatch(parts[1]):
        return None
    try:
        return TokenClaim(uuid.UUID(hex=parts[1]), parts[2], _PREFIXES[parts[0]])
    except ValueError:
        return None
