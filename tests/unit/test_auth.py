"""Passwords, personal access tokens and encrypted mailbox secrets."""

from __future__ import annotations

import base64
import uuid

import pytest

from pigeon_common.auth import (
    TOKEN_PREFIX,
    TokenClaim,
    TokenSigner,
    hash_password,
    parse_token,
    verify_password,
)
from pigeon_common.domain.access import Scope
from pigeon_common.secrets_box import SecretBox, SecretBoxError, derive_key

SECRET = b"s" * 48
OTHER_SECRET = b"t" * 48
USER = uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7")
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
NEW_HASH = "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaG5ld2hhc2g"


def _claim(token: str) -> TokenClaim:
    claim = parse_token(token)
    assert claim is not None, f"our own token does not parse: {token}"
    return claim


# --- tokens -------------------------------------------------------------------------------


def test_token_round_trip() -> None:
    signer = TokenSigner([SECRET])
    token = signer.token_for(USER, 0, HASH)
    assert token.startswith(f"{TOKEN_PREFIX}_{USER.hex}_")
    claim = _claim(token)
    assert claim.user_id == USER
    assert signer.verify(claim, 0, HASH)


def test_token_round_trip_for_many_users() -> None:
    # The MAC is URL-safe base64, so it holds '_' and '-' about half of the time.
    signer = TokenSigner([SECRET])
    macs_with_underscore = 0
    for i in range(200):
        user = uuid.UUID(int=i * 7919 + 1)
        token = signer.token_for(user, i % 3, HASH)
        claim = _claim(token)
        assert claim.user_id == user
        assert signer.verify(claim, i % 3, HASH)
        macs_with_underscore += "_" in claim.mac
    assert macs_with_underscore > 0


def test_token_is_deterministic_and_per_user() -> None:
    signer = TokenSigner([SECRET])
    assert signer.token_for(USER, 0, HASH) == TokenSigner([SECRET]).token_for(USER, 0, HASH)
    other_user = uuid.UUID(int=USER.int ^ 1)
    assert signer.token_for(USER, 0, HASH) != signer.token_for(other_user, 0, HASH)


def test_new_password_hash_invalidates_old_tokens() -> None:
    signer = TokenSigner([SECRET])
    old = signer.token_for(USER, 0, HASH)
    new = signer.token_for(USER, 0, NEW_HASH)
    assert old != new
    assert not signer.verify(_claim(old), 0, NEW_HASH)
    assert signer.verify(_claim(new), 0, NEW_HASH)


def test_bumped_epoch_invalidates_old_tokens() -> None:
    signer = TokenSigner([SECRET])
    old = signer.token_for(USER, 4, HASH)
    new = signer.token_for(USER, 5, HASH)
    assert old != new
    assert not signer.verify(_claim(old), 5, HASH)
    assert signer.verify(_claim(new), 5, HASH)


def test_token_of_another_server_secret_fails() -> None:
    foreign = TokenSigner([OTHER_SECRET]).token_for(USER, 0, HASH)
    assert not TokenSigner([SECRET]).verify(_claim(foreign), 0, HASH)


def test_token_with_another_user_id_fails() -> None:
    signer = TokenSigner([SECRET])
    mac = _claim(signer.token_for(USER, 0, HASH)).mac
    forged = TokenClaim(user_id=uuid.UUID(int=USER.int ^ 1), mac=mac)
    assert not signer.verify(forged, 0, HASH)


def test_tampered_mac_fails() -> None:
    signer = TokenSigner([SECRET])
    claim = _claim(signer.token_for(USER, 0, HASH))
    flipped = ("A" if claim.mac[0] != "A" else "B") + claim.mac[1:]
    assert not signer.verify(TokenClaim(user_id=claim.user_id, mac=flipped), 0, HASH)


def _well_formed() -> str:
    return TokenSigner([SECRET]).token_for(USER, 0, HASH)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "pgn",
        "pgn_",
        "pgn__",
        f"pgn_{USER.hex}",
        f"pgn_{USER.hex}_",
        f"pgn_{USER.hex}_{'a' * 42}",
        f"pgn_{USER.hex}_{'a' * 44}",
        f"xyz_{USER.hex}_{'a' * 43}",
        f"PGN_{USER.hex}_{'a' * 43}",
        f"pgn_{USER.hex[:-1]}_{'a' * 43}",
        f"pgn_{USER.hex}0_{'a' * 43}",
        f"pgn_{'g' * 32}_{'a' * 43}",
        f"pgn_not-a-uuid_{'a' * 43}",
        f"Bearer pgn_{USER.hex}_{'a' * 43}",
        f"pgn-{USER.hex}-{'a' * 43}",
    ],
)
def test_parse_token_refuses_malformed_tokens(token: str) -> None:
    assert parse_token(token) is None


@pytest.mark.parametrize(
    "user_part",
    [str(USER), "{" + USER.hex + "}", "urn:uuid:" + USER.hex, USER.hex.upper()],
)
def test_parse_token_refuses_other_spellings_of_the_user_id(user_part: str) -> None:
    # One token, one string: `pgn_<32 lower-case hex digits>_<43-character MAC>`.
    mac = _claim(_well_formed()).mac
    assert parse_token(f"{TOKEN_PREFIX}_{user_part}_{mac}") is None


# --- passwords ----------------------------------------------------------------------------


def test_password_hash_and_verify() -> None:
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2")
    assert "correct horse battery" not in hashed
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "correct horse batterY")
    assert not verify_password(hashed, "")


def test_password_hashes_are_salted() -> None:
    assert hash_password("same password") != hash_password("same password")


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$garbage"])
def test_verify_password_with_a_broken_hash_is_false(stored: str) -> None:
    assert verify_password(stored, "whatever") is False


# --- encrypted secrets --------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", ["hunter2", "", "pässwörd ✓ with spaces", "x" * 2_000])
def test_secret_box_round_trip(plaintext: str) -> None:
    box = SecretBox([SECRET])
    token = box.encrypt(plaintext)
    assert box.decrypt(token) == plaintext
    assert SecretBox([SECRET]).decrypt(token) == plaintext  # same key from the same secret


def test_ciphertext_does_not_show_the_plaintext() -> None:
    plaintext = "my-smtp-password-123"
    token = SecretBox([SECRET]).encrypt(plaintext)
    assert plaintext not in token
    assert base64.urlsafe_b64encode(plaintext.encode()).decode()[:16] not in token
    assert plaintext.encode() not in base64.urlsafe_b64decode(token + "==")


def test_encryption_is_randomised() -> None:
    box = SecretBox([SECRET])
    assert box.encrypt("hunter2") != box.encrypt("hunter2")


def test_another_key_cannot_decrypt() -> None:
    token = SecretBox([SECRET]).encrypt("hunter2")
    with pytest.raises(SecretBoxError):
        SecretBox([OTHER_SECRET]).decrypt(token)


@pytest.mark.parametrize("mangle", ["flip", "truncate", "garbage", "empty"])
def test_corrupted_ciphertext_fails(mangle: str) -> None:
    token = SecretBox([SECRET]).encrypt("hunter2")
    broken = {
        "flip": token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:],
        "truncate": token[:-10],
        "garbage": "not a fernet token ✗",
        "empty": "",
    }[mangle]
    with pytest.raises(SecretBoxError):
        SecretBox([SECRET]).decrypt(broken)


# --- key rotation -------------------------------------------------------------------------


def test_a_rotated_box_decrypts_under_any_key_and_encrypts_under_the_current() -> None:
    old = SecretBox([OTHER_SECRET]).encrypt("hunter2")
    rotated = SecretBox([SECRET, OTHER_SECRET])
    assert rotated.decrypt(old) == "hunter2"
    assert not rotated.is_current(old)
    new = rotated.encrypt("hunter2")
    assert rotated.is_current(new)
    assert SecretBox([SECRET]).decrypt(new) == "hunter2"  # the new key alone reads it
    with pytest.raises(SecretBoxError):
        SecretBox([OTHER_SECRET]).decrypt(new)


def test_the_first_key_is_the_one_that_encrypts() -> None:
    """MultiFernet's order: the same two keys the other way round encrypt with the other."""
    token = SecretBox([OTHER_SECRET, SECRET]).encrypt("hunter2")
    assert SecretBox([OTHER_SECRET]).decrypt(token) == "hunter2"
    with pytest.raises(SecretBoxError):
        SecretBox([SECRET]).decrypt(token)


def test_reencrypt_moves_a_secret_to_the_current_key() -> None:
    old = SecretBox([OTHER_SECRET]).encrypt("hunter2")
    moved = SecretBox([SECRET, OTHER_SECRET]).reencrypt(old)
    assert SecretBox([SECRET]).decrypt(moved) == "hunter2"
    assert SecretBox([SECRET]).is_current(moved)
    with pytest.raises(SecretBoxError):
        SecretBox([SECRET, OTHER_SECRET]).reencrypt(SecretBox([b"u" * 48]).encrypt("x"))


def test_a_token_signed_with_a_previous_key_still_verifies() -> None:
    old = TokenSigner([OTHER_SECRET]).token_for(USER, 0, HASH)
    rotated = TokenSigner([SECRET, OTHER_SECRET])
    assert rotated.verify(_claim(old), 0, HASH)
    assert not rotated.verify(_claim(old), 1, HASH)  # a revoke still ends it
    assert not rotated.verify(_claim(old), 0, NEW_HASH)  # and so does a new password


def test_a_token_signed_with_an_unknown_key_does_not_verify() -> None:
    foreign = TokenSigner([b"u" * 48]).token_for(USER, 0, HASH)
    assert not TokenSigner([SECRET, OTHER_SECRET]).verify(_claim(foreign), 0, HASH)


def test_a_new_token_uses_the_current_key() -> None:
    rotated = TokenSigner([SECRET, OTHER_SECRET])
    token = rotated.token_for(USER, 0, HASH, Scope.READ)
    assert token == TokenSigner([SECRET]).token_for(USER, 0, HASH, Scope.READ)
    assert TokenSigner([SECRET]).verify(_claim(token), 0, HASH)
    assert not TokenSigner([OTHER_SECRET]).verify(_claim(token), 0, HASH)


@pytest.mark.parametrize("given", [b"s" * 48, []])
def test_signers_refuse_a_bare_secret_or_none(given: bytes | list[bytes]) -> None:
    """A bare `bytes` would be read as a list of ints: refused, not half-working."""
    for cls in (TokenSigner, SecretBox):
        with pytest.raises(TypeError):
            cls(given)  # type: ignore[arg-type]


def test_keys_differ_by_purpose() -> None:
    assert derive_key(SECRET, "pigeon personal access tokens v1") != derive_key(
        SECRET, "pigeon mailbox secrets v1"
    )
    assert derive_key(SECRET, "a") == derive_key(SECRET, "a")
    assert derive_key(SECRET, "a") != derive_key(OTHER_SECRET, "a")
    assert len(derive_key(SECRET, "a")) == 32
