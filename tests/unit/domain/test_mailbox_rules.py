"""A stored password stays bound to its server: every bound field, both sides."""

from __future__ import annotations

import uuid

import pytest

from pigeon_common import events as ev
from pigeon_common.domain import mailbox as rules
from pigeon_common.domain.errors import Conflict, Invalid

MAILBOX = uuid.uuid4()
CONFIG = ev.MailboxConfig(
    name="Main",
    from_name="Ann",
    from_address="ann@example.com",
    smtp=ev.ServerEndpoint(host="smtp.example.com", port=587, security="starttls", username="ann"),
    imap=ev.ServerEndpoint(host="imap.example.com", port=993, security="tls", username="ann"),
)
STATE = rules.MailboxState(MAILBOX, uuid.uuid4(), CONFIG)
CHANGES = {"host": "evil.example.net", "port": 2525, "security": "plain", "username": "eve"}


@pytest.mark.parametrize("side", ["smtp", "imap"])
@pytest.mark.parametrize("field", sorted(CHANGES))
def test_a_changed_endpoint_drops_that_sides_password(side: str, field: str) -> None:
    patch = {field: CHANGES[field]}
    change = rules.update_mailbox(
        STATE, {}, patch if side == "smtp" else None, patch if side == "imap" else None, None, None
    )
    dropped, kept = (
        (change.smtp_secret, change.imap_secret)
        if side == "smtp"
        else (change.imap_secret, change.smtp_secret)
    )
    assert dropped is rules.SecretChange.DROP and kept is rules.SecretChange.KEEP
    [event] = change.events
    assert isinstance(event, ev.MailboxUpdated) and event.passwords_changed
    assert getattr(getattr(event.config, side), field) == CHANGES[field]


@pytest.mark.parametrize("side", ["smtp", "imap"])
def test_a_new_password_with_the_change_replaces_it(side: str) -> None:
    patch = {"host": "new.example.com"}
    change = rules.update_mailbox(
        STATE,
        {},
        patch if side == "smtp" else None,
        patch if side == "imap" else None,
        "pw" if side == "smtp" else None,
        "pw" if side == "imap" else None,
    )
    secret = change.smtp_secret if side == "smtp" else change.imap_secret
    assert secret is rules.SecretChange.REPLACE


def test_same_values_or_other_fields_keep_both_passwords() -> None:
    same = {"host": "smtp.example.com", "port": 587}
    change = rules.update_mailbox(STATE, {"name": "Other"}, same, {}, None, None)
    assert (change.smtp_secret, change.imap_secret) == (rules.SecretChange.KEEP,) * 2
    [event] = change.events
    assert isinstance(event, ev.MailboxUpdated) and not event.passwords_changed
    assert event.config.name == "Other"


def test_append_to_sent_cannot_be_nulled() -> None:
    with pytest.raises(Invalid):
        rules.update_mailbox(STATE, {"append_to_sent": None}, None, None, None, None)


@pytest.mark.parametrize(
    ("top", "smtp", "imap", "field"),
    [
        ({}, None, {"host": None}, "imap.host"),
        ({}, {"port": None}, None, "smtp.port"),
        ({"bounce_folder": None}, None, None, "bounce_folder"),
    ],
)
def test_a_partial_update_may_not_leave_a_field_invalid(
    top: dict[str, object],
    smtp: dict[str, object] | None,
    imap: dict[str, object] | None,
    field: str,
) -> None:
    with pytest.raises(Invalid) as refused:
        rules.update_mailbox(STATE, top, smtp, imap, None, None)
    assert refused.value.field == field


def test_a_mailbox_in_use_cannot_be_deleted() -> None:
    with pytest.raises(Conflict):
        rules.delete_mailbox(STATE, used_by=2)
    assert [type(e) for e in rules.delete_mailbox(STATE, 0)] == [ev.MailboxDeleted]


def test_sharing() -> None:
    user = uuid.uuid4()
    [event] = rules.share_mailbox(STATE, user)
    assert isinstance(event, ev.MailboxShared) and event.user_id == user
    shared = rules.MailboxState(MAILBOX, STATE.owner_id, CONFIG, frozenset({user}))
    assert rules.share_mailbox(shared, user) == []
    assert rules.share_mailbox(STATE, STATE.owner_id or user) == []
    assert rules.unshare_mailbox(STATE, user) == []
    assert [type(e) for e in rules.unshare_mailbox(shared, user)] == [ev.MailboxUnshared]
