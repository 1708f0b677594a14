"""Tracking tokens: round trips, and every forgery or reuse refused (invariant 4)."""

from __future__ import annotations

import re
import uuid

import pytest

from pigeon_common.render import TrackingSigner, tracking_urls

SIGNER = TrackingSigner([b"server secret"])
OTHER_SIGNER = TrackingSigner([b"another server secret"])
CAMPAIGN = uuid.uuid4()
RECIPIENT = uuid.uuid4()
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def _variants(token: str) -> list[str]:
    """Every single-character change, truncation and extension of a token."""
    alphabet = "AaZz09-_"
    changed = [
        token[:i] + c + token[i + 1 :] for i in range(len(token)) for c in alphabet if c != token[i]
    ]
    return [
        *changed,
        token[:-1],
        token[:-4],
        token + "A",
        token + "AAAA",
        "",
        token + "/",
        token.upper(),
    ]


def test_message_token_round_trip() -> None:
    token = SIGNER.message_token(CAMPAIGN, RECIPIENT)
    assert SIGNER.read_message_token(token) == (CAMPAIGN, RECIPIENT)
    assert URL_SAFE.fullmatch(token) and "/" not in token


def test_unsubscribe_token_round_trip() -> None:
    token = SIGNER.unsubscribe_token(CAMPAIGN, RECIPIENT)
    assert SIGNER.read_unsubscribe_token(token) == (CAMPAIGN, RECIPIENT)
    assert URL_SAFE.fullmatch(token)


def test_link_token_round_trip() -> None:
    for index in (0, 1, 7, 65535):
        token = SIGNER.link_token(CAMPAIGN, RECIPIENT, index)
        assert URL_SAFE.fullmatch(token)
        assert SIGNER.read_link_token(CAMPAIGN, RECIPIENT, token) == index


@pytest.mark.parametrize("index", [-1, 65536])
def test_link_index_out_of_range(index: int) -> None:
    with pytest.raises(ValueError):
        SIGNER.link_token(CAMPAIGN, RECIPIENT, index)


def test_forged_and_truncated_tokens_refused() -> None:
    message = SIGNER.message_token(CAMPAIGN, RECIPIENT)
    unsubscribe = SIGNER.unsubscribe_token(CAMPAIGN, RECIPIENT)
    link = SIGNER.link_token(CAMPAIGN, RECIPIENT, 3)
    for forged in _variants(message):
        assert forged == message or SIGNER.read_message_token(forged) is None
    for forged in _variants(unsubscribe):
        assert forged == unsubscribe or SIGNER.read_unsubscribe_token(forged) is None
    for forged in _variants(link):
        assert forged == link or SIGNER.read_link_token(CAMPAIGN, RECIPIENT, forged) is None


def test_token_from_another_key_refused() -> None:
    assert SIGNER.read_message_token(OTHER_SIGNER.message_token(CAMPAIGN, RECIPIENT)) is None
    other_link = OTHER_SIGNER.link_token(CAMPAIGN, RECIPIENT, 0)
    assert SIGNER.read_link_token(CAMPAIGN, RECIPIENT, other_link) is None


ROTATED = TrackingSigner([b"the new server secret", b"server secret"])


def test_tokens_signed_before_a_rotation_still_verify() -> None:
    """SIGNER's key is ROTATED's previous one: links in mail already sent keep working."""
    assert ROTATED.read_message_token(SIGNER.message_token(CAMPAIGN, RECIPIENT)) == (
        CAMPAIGN,
        RECIPIENT,
    )
    unsubscribe = SIGNER.unsubscribe_token(CAMPAIGN, RECIPIENT)
    assert ROTATED.read_unsubscribe_token(unsubscribe) == (CAMPAIGN, RECIPIENT)
    link = SIGNER.link_token(CAMPAIGN, RECIPIENT, 7)
    assert ROTATED.read_link_token(CAMPAIGN, RECIPIENT, link) == 7
    # ... and still only for their own message and kind.
    assert ROTATED.read_link_token(CAMPAIGN, uuid.uuid4(), link) is None
    assert ROTATED.read_message_token(unsubscribe) is None


def test_a_rotated_signer_signs_with_the_current_key_only() -> None:
    current = TrackingSigner([b"the new server secret"])
    assert ROTATED.message_token(CAMPAIGN, RECIPIENT) == current.message_token(CAMPAIGN, RECIPIENT)
    assert ROTATED.link_token(CAMPAIGN, RECIPIENT, 1) == current.link_token(CAMPAIGN, RECIPIENT, 1)
    urls = tracking_urls("https://t.example.com", ROTATED, CAMPAIGN, RECIPIENT)
    assert urls.click_url(1).endswith(f"/r/{current.link_token(CAMPAIGN, RECIPIENT, 1)}/")
    assert SIGNER.read_message_token(ROTATED.message_token(CAMPAIGN, RECIPIENT)) is None


def test_a_rotated_signer_refuses_unknown_keys_and_forgeries() -> None:
    assert ROTATED.read_message_token(OTHER_SIGNER.message_token(CAMPAIGN, RECIPIENT)) is None
    other_link = OTHER_SIGNER.link_token(CAMPAIGN, RECIPIENT, 0)
    assert ROTATED.read_link_token(CAMPAIGN, RECIPIENT, other_link) is None
    old = SIGNER.unsubscribe_token(CAMPAIGN, RECIPIENT)
    for forged in _variants(old):
        assert forged == old or ROTATED.read_unsubscribe_token(forged) is None


def test_ids_cannot_be_swapped_in() -> None:
    """A valid token's ids replaced by someone else's (enumeration) fails the MAC."""
    import base64

    token = SIGNER.unsubscribe_token(CAMPAIGN, RECIPIENT)
    raw = base64.urlsafe_b64decode(token)
    victim = uuid.uuid4()
    forged = base64.urlsafe_b64encode(raw[:16] + victim.bytes + raw[32:]).decode()
    assert SIGNER.read_unsubscribe_token(forged) is None


def test_link_token_bound_to_its_message() -> None:
    token = SIGNER.link_token(CAMPAIGN, RECIPIENT, 2)
    assert SIGNER.read_link_token(uuid.uuid4(), RECIPIENT, token) is None
    assert SIGNER.read_link_token(CAMPAIGN, uuid.uuid4(), token) is None


def test_kinds_never_cross() -> None:
    message = SIGNER.message_token(CAMPAIGN, RECIPIENT)
    unsubscribe = SIGNER.unsubscribe_token(CAMPAIGN, RECIPIENT)
    link = SIGNER.link_token(CAMPAIGN, RECIPIENT, 0)
    assert message != unsubscribe
    assert SIGNER.read_unsubscribe_token(message) is None
    assert SIGNER.read_message_token(unsubscribe) is None
    assert SIGNER.read_message_token(link) is None
    assert SIGNER.read_unsubscribe_token(link) is None
    assert SIGNER.read_link_token(CAMPAIGN, RECIPIENT, message) is None


@pytest.mark.parametrize(
    "garbage", ["", "!!!!", "a" * 64, "=" * 64, "a/b", "é" * 64, "A" * 63 + "="]
)
def test_garbage_refused(garbage: str) -> None:
    assert SIGNER.read_message_token(garbage) is None
    assert SIGNER.read_unsubscribe_token(garbage) is None
    assert SIGNER.read_link_token(CAMPAIGN, RECIPIENT, garbage[:24]) is None


def test_tracking_urls_paths() -> None:
    urls = tracking_urls("https://t.example.com/", SIGNER, CAMPAIGN, RECIPIENT)
    token = SIGNER.message_token(CAMPAIGN, RECIPIENT)
    assert urls.open_url == f"https://t.example.com/campaigns/o/{token}/p.png"
    unsubscribe = SIGNER.unsubscribe_token(CAMPAIGN, RECIPIENT)
    assert urls.unsubscribe_url == f"https://t.example.com/campaigns/unsub/{unsubscribe}/"
    click = urls.click_url(5)
    match = re.fullmatch(r"https://t\.example\.com/campaigns/t/([^/]+)/r/([^/]+)/", click)
    assert match is not None
    assert SIGNER.read_message_token(match.group(1)) == (CAMPAIGN, RECIPIENT)
    assert SIGNER.read_link_token(CAMPAIGN, RECIPIENT, match.group(2)) == 5
