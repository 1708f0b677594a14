"""The pure parts of the admin's actions: form reading, the buttons offered per status,
the preview frame's policy, and the connection test's folder suggestion."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from pigeon_api.admin.forms import (
    attributes,
    optional_int,
    parse_model,
    rule_errors,
    validation_errors,
)
from pigeon_api.admin.permissions import campaign_permissions, offered
from pigeon_api.admin.preview import preview_headers
from pigeon_api.commands.connection import Folder, suggest_folders
from pigeon_api.schemas.mailboxes import MailboxCreate
from pigeon_api.schemas.recipients import RecipientCreate
from pigeon_common.domain.access import Actor, Role
from pigeon_common.domain.errors import Invalid


def test_a_model_refusal_is_shown_next_to_its_field() -> None:
    body, errors = parse_model(RecipientCreate, {"email": "not an address"})
    assert body is None
    assert errors.get("email") and not errors.general
    _, nested = parse_model(MailboxCreate, {"name": "x", "smtp": {"port": "no"}})
    assert nested.get("smtp.port") and nested.get("from_address") and nested.get("imap")
    good, none = parse_model(RecipientCreate, {"email": "a@example.org"})
    assert good is not None and not none


def test_a_rule_error_keeps_its_field_and_drops_the_repeated_name() -> None:
    errors = rule_errors(Invalid("template_error", "template_markdown: line 3: boom", "x"))
    assert errors.get("x") == "template_markdown: line 3: boom"
    errors = rule_errors(Invalid("validation_error", "mailbox_id: no such mailbox", "mailbox_id"))
    assert errors.get("mailbox_id") == "no such mailbox"
    assert rule_errors(Invalid("conflict", "no field")).general == "no field"


def test_validation_errors_strip_pydantics_prefix() -> None:
    with pytest.raises(ValidationError) as caught:
        RecipientCreate.model_validate({"email": "x"})
    message = validation_errors(caught.value).get("email")
    assert message and not message.startswith("Value error, ")


def test_form_values() -> None:
    assert attributes("a=1\n\n b = two \nc=") == {"a": "1", "b": "two", "c": ""}
    assert attributes("a=1\nnope") == "line 2: write key=value"
    assert attributes("=x") == "line 1: write key=value"
    assert optional_int({"n": " 12 "}, "n") == 12
    assert optional_int({"n": ""}, "n") is None
    assert optional_int({"n": "ten"}, "n") == "ten"  # left for the model to refuse


def test_buttons_follow_the_domains_allowed_moves() -> None:
    assert offered("draft") == {"edit", "send", "delete"}
    assert offered("scheduled") == {"edit", "send", "unschedule", "cancel", "delete"}
    assert offered("sending") == {"pause", "cancel"}
    assert offered("paused") == {"resume", "cancel"}
    assert offered("done") == offered("cancelled") == frozenset()


def test_a_viewer_is_offered_nothing_that_writes() -> None:
    owner, viewer = uuid.uuid4(), uuid.uuid4()
    row = {"owner_id": owner, "shared_with": [viewer]}
    seen = campaign_permissions(Actor(viewer, Role.VIEWER), row)
    assert not any(seen.values())
    mine = campaign_permissions(Actor(owner, Role.MEMBER), row)
    assert all(mine.values())


def test_the_preview_frame_runs_nothing_and_loads_remote_images_only_when_asked() -> None:
    blocked = preview_headers(remote_images=False)["Content-Security-Policy"]
    shown = preview_headers(remote_images=True)["Content-Security-Policy"]
    for policy in (blocked, shown):
        assert policy.startswith("default-src 'none'")
        assert "script-src" not in policy  # falls back to default-src 'none'
        assert "frame-ancestors 'self'" in policy
    assert "img-src data:;" in blocked and "http:" not in blocked
    assert "img-src data: http: https:" in shown


def _folder(name: str, *flags: str, selectable: bool = True) -> Folder:
    return Folder(name, name, flags, selectable)


def test_folders_are_suggested_by_special_use_then_by_name() -> None:
    folders = [
        _folder("INBOX"),
        _folder("Gesendet", "\\Sent"),
        _folder("Sent"),
        _folder("Archive/Bounces"),
    ]
    assert suggest_folders(folders) == ("Gesendet", "Archive/Bounces")
    assert suggest_folders([_folder("Sent"), _folder("INBOX")]) == ("Sent", None)
    assert suggest_folders([_folder("Sent", "\\Sent", selectable=False)]) == (None, None)
    assert suggest_folders([]) == (None, None)
