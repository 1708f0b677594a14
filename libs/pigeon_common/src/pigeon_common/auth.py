"""Users' credentials: argon2 password hashes and personal access tokens.

Each user has two tokens: the read-write `pgn_<user id>_<mac>` and the read-only
`pgr_<user id>_<mac>`, where mac = HMAC-SHA256(key, scope, user id, token epoch,
password hash). Neither is stored: they are recomputed to check them, so changing the
password (a new hash) or bumping the epoch (revoke) invalidates every earlier token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pigeon_common.domain.access import Scope
from pigeon_common.secrets_box import derive_key

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
    """Derives and checks personal access tokens with the server secret."""

    def __init__(self, server_secret: bytes) -> None:
        self._key = derive_key(server_secret, "pigeon personal access tokens v1")

    def _mac(self, user_id: uuid.UUID, epoch: int, password_hash: str, scope: Scope) -> str:
        # The read-write form is the one tokens had before scopes, so they stay valid.
        label = "" if scope is Scope.WRITE else f"{scope}:"
        message = f"{label}{user_id}:{epoch}:{password_hash}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def token_for(
        self, user_id: uuid.UUID, epoch: int, password_hash: str, scope: Scope = Scope.WRITE
    ) -> str:
        prefix = TOKEN_PREFIX if scope is Scope.WRITE else READ_ONLY_PREFIX
        return f"{prefix}_{user_id.hex}_{self._mac(user_id, epoch, password_hash, scope)}"

    def verify(self, claim: TokenClaim, epoch: int, password_hash: str) -> bool:
        expected = self._mac(claim.user_id, epoch, password_hash, claim.scope)
        return hmac.compare_digest(expected.encode(), claim.mac.encode())


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
