"""Mailbox rules: a stored password stays bound to the server it was given for.

Changing a side's host, port, security or username drops that side's stored password
unless the same change gives a new one: otherwise whoever may edit a mailbox could point
it at their own server and have MC Pigeon log in there with the old password.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pigeon_common import events as ev
from pigeon_common.domain.errors import Conflict, Invalid

BOUND_FIELDS = ("host", "port", "security", "username")


class SecretChange(StrEnum):
    KEEP = "keep"
    REPLACE = "replace"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class MailboxState:
    mailbox_id: uuid.UUID
    owner_id: uuid.UUID | None
    config: ev.MailboxConfig
    shared_with: frozenset[uuid.UUID] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class MailboxChange:
    """What an update does: the new configuration, its event, and each side's secret."""

    config: ev.MailboxConfig
    smtp_secret: SecretChange
    imap_secret: SecretChange
    events: list[ev.Event]


def secret_change(
    old: ev.ServerEndpoint, new: ev.ServerEndpoint, new_password: str | None
) -> SecretChange:
    """What happens to one side's stored password when its endpoint changes."""
    if new_password is not None:
        return SecretChange.REPLACE
    if any(getattr(old, name) != getattr(new, name) for name in BOUND_FIELDS):
        return SecretChange.DROP
    return SecretChange.KEEP


def update_mailbox(
    state: MailboxState,
    top: dict[str, Any],
    smtp: dict[str, Any] | None,
    imap: dict[str, Any] | None,
    smtp_password: str | None,
    imap_password: str | None,
) -> MailboxChange:
    """Apply a partial update (`top`: the mailbox's own fields; `smtp` / `imap`: the
    given endpoint fields, passwords apart)."""
    if "append_to_sent" in top and top["append_to_sent"] is None:
        raise Invalid("validation_error", "append_to_sent: must not be null", "append_to_sent")
    old = state.config
    new_smtp = _merged(old.smtp, smtp or {}, "smtp")
    new_imap = _merged(old.imap, imap or {}, "imap")
    config = _merged(old, {**top, "smtp": new_smtp.model_dump(), "imap": new_imap.model_dump()})
    smtp_secret = secret_change(old.smtp, new_smtp, smtp_password)
    imap_secret = secret_change(old.imap, new_imap, imap_password)
    event = ev.MailboxUpdated(
        mailbox_id=state.mailbox_id,
        config=config,
        passwords_changed=(smtp_secret, imap_secret) != (SecretChange.KEEP, SecretChange.KEEP),
    )
    return MailboxChange(config, smtp_secret, imap_secret, [event])


Model = TypeVar("Model", bound=BaseModel)


def _merged(model: Model, update: dict[str, Any], where: str = "") -> Model:
    """`model` with `update` applied and validated as a whole: a partial update may not
    leave a field null or out of range (`{"imap": {"host": null}}` is refused, 422)."""
    try:
        return type(model).model_validate({**model.model_dump(), **update})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in (where, *error["loc"]) if part != "")
        raise Invalid("validation_error", f"{field}: {error['msg']}", field) from None


def delete_mailbox(state: MailboxState, used_by: int) -> list[ev.Event]:
    if used_by:
        raise Conflict(
            "conflict", f"mailbox is used by {used_by} campaign(s); change or delete them first"
        )
    return [ev.MailboxDeleted(mailbox_id=state.mailbox_id)]


def share_mailbox(state: MailboxState, user_id: uuid.UUID) -> list[ev.Event]:
    if user_id in state.shared_with or user_id == state.owner_id:
        return []
    return [ev.MailboxShared(mailbox_id=state.mailbox_id, user_id=user_id)]


def unshare_mailbox(state: MailboxState, user_id: uuid.UUID) -> list[ev.Event]:
    if user_id not in state.shared_with:
        return []
    return [ev.MailboxUnshared(mailbox_id=state.mailbox_id, user_id=user_id)]
