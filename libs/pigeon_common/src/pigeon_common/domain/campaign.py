"""The campaign lifecycle: `decide(state, command) -> events`, or a RuleError.

A campaign moves draft → scheduled → sending → done, or to paused, cancelled or failed.
Its content and recipients can change only before it starts sending. The command
layer loads the state from the read models, calls `decide`, and stores the events;
the senders' scheduler and the sender use the same function for their moves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pigeon_common import events as ev
from pigeon_common.domain.errors import Conflict, Invalid
from pigeon_common.domain.status import EDITABLE, CampaignStatus
from pigeon_common.render.errors import TemplateError, TemplateField
from pigeon_common.render.template import parse_source

CONTENT_FIELDS = ("name", "subject", "template_markdown", "mailbox_id")


@dataclass(frozen=True, slots=True)
class CampaignState:
    """What the rules need to know of a campaign (from its read-model row)."""

    campaign_id: uuid.UUID
    status: CampaignStatus
    # The content (a lifecycle move such as the scheduler's start needs only the status).
    name: str = ""
    subject: str = ""
    template_markdown: str = ""
    mailbox_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    shared_with: frozenset[uuid.UUID] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class CreateCampaign:
    campaign_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    subject: str
    template_markdown: str
    mailbox_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class UpdateCampaign:
    """Only the given fields change (a key absent from `changes` is left as it is)."""

    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteCampaign:
    pass


@dataclass(frozen=True, slots=True)
class CloneCampaign:
    """A new draft with this campaign's content and no recipients."""

    new_id: uuid.UUID
    owner_id: uuid.UUID
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeRecipients:
    """Add, import or delete recipients (the events are built by the command layer from
    the validated rows; the rule only says whether the list may still change)."""

    action: str = "given new recipients"


@dataclass(frozen=True, slots=True)
class ScheduleCampaign:
    send_at: datetime
    options: ev.SendOptions
    now: datetime


@dataclass(frozen=True, slots=True)
class UnscheduleCampaign:
    pass


@dataclass(frozen=True, slots=True)
class StartSending:
    """Send now (from the API) or at `send_at` (from the scheduler)."""

    run_id: uuid.UUID
    recipients: int
    chunks: int
    options: ev.SendOptions
    links: list[str]


@dataclass(frozen=True, slots=True)
class PauseCampaign:
    reason: str


@dataclass(frozen=True, slots=True)
class ResumeCampaign:
    run_id: uuid.UUID
    chunks: int


@dataclass(frozen=True, slots=True)
class CancelCampaign:
    pass


@dataclass(frozen=True, slots=True)
class ShareCampaign:
    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class UnshareCampaign:
    user_id: uuid.UUID


Command = (
    CreateCampaign
    | UpdateCampaign
    | DeleteCampaign
    | CloneCampaign
    | ChangeRecipients
    | ScheduleCampaign
    | UnscheduleCampaign
    | StartSending
    | PauseCampaign
    | ResumeCampaign
    | CancelCampaign
    | ShareCampaign
    | UnshareCampaign
)

# The statuses each lifecycle command may start from.
ALLOWED_FROM: dict[type[Any], frozenset[CampaignStatus]] = {
    UpdateCampaign: EDITABLE,
    DeleteCampaign: EDITABLE,
    ChangeRecipients: EDITABLE,
    ScheduleCampaign: EDITABLE,
    StartSending: EDITABLE,
    UnscheduleCampaign: frozenset({CampaignStatus.SCHEDULED}),
    PauseCampaign: frozenset({CampaignStatus.SENDING}),
    ResumeCampaign: frozenset({CampaignStatus.PAUSED}),
    CancelCampaign: frozenset(
        {CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED}
    ),
}
_LOCKED_VERBS: dict[type[Any], str] = {UpdateCampaign: "edited", DeleteCampaign: "deleted"}
_VERBS: dict[type[Any], str] = {
    ScheduleCampaign: "schedule",
    StartSending: "send",
    UnscheduleCampaign: "unschedule",
    PauseCampaign: "pause",
    ResumeCampaign: "resume",
    CancelCampaign: "cancel",
}


class CampaignLocked(Conflict):
    """The campaign has started sending, so its content and recipients are history."""

    def __init__(self, status: CampaignStatus, action: str) -> None:
        super().__init__(
            "campaign_locked",
            f"campaign is {status}: it has started sending, so it can no longer be {action}",
        )
        self.status = status


class InvalidTransition(Conflict):
    """The command does not apply to a campaign in its current status."""

    def __init__(self, status: CampaignStatus, action: str) -> None:
        super().__init__("invalid_status", f"campaign is {status}: cannot {action} it")
        self.status = status


def check_templates(subject: str | None, template_markdown: str | None) -> None:
    """The renderer's own checks of an author's template (syntax, the sandbox's static
    refusals, size, track_url arguments), made when a campaign is saved."""
    fields: tuple[tuple[TemplateField, str | None], ...] = (
        ("subject", subject),
        ("template_markdown", template_markdown),
    )
    for name, source in fields:
        if source is not None:
            try:
                parse_source(source, name)
            except TemplateError as exc:
                raise Invalid("template_error", str(exc), field=exc.field) from None


def decide(state: CampaignState | None, command: Command) -> list[ev.Event]:
    """The events that carry out `command` on the campaign in `state` (None: no campaign
    yet); raises a RuleError when a rule refuses it. An empty list: nothing to change."""
    if isinstance(command, CreateCampaign):
        check_templates(command.subject, command.template_markdown)
        return [
            ev.CampaignCreated(
                campaign_id=command.campaign_id,
                owner_id=command.owner_id,
                name=command.name,
                subject=command.subject,
                template_markdown=command.template_markdown,
                mailbox_id=command.mailbox_id,
            )
        ]
    if state is None:
        raise ValueError("only CreateCampaign applies to no campaign")
    _check_status(state, command)
    match command:
        case UpdateCampaign():
            return _update(state, command.changes)
        case DeleteCampaign():
            return [ev.CampaignDeleted(campaign_id=state.campaign_id)]
        case CloneCampaign():
            return [
                ev.CampaignCreated(
                    campaign_id=command.new_id,
                    owner_id=command.owner_id,
                    name=command.name or f"{state.name} (copy)"[:200],
                    subject=state.subject,
                    template_markdown=state.template_markdown,
                    mailbox_id=state.mailbox_id,
                    cloned_from=state.campaign_id,
                )
            ]
        case ChangeRecipients():
            return []
        case ScheduleCampaign():
            if command.send_at <= command.now:
                raise Invalid("validation_error", "send_at: must be in the future", "send_at")
            return [
                ev.CampaignScheduled(
                    campaign_id=state.campaign_id, send_at=command.send_at, options=command.options
                )
            ]
        case UnscheduleCampaign():
            return [ev.CampaignUnscheduled(campaign_id=state.campaign_id)]
        case StartSending():
            return [
                ev.CampaignSendingStarted(
                    campaign_id=state.campaign_id,
                    run_id=command.run_id,
                    recipients=command.recipients,
                    chunks=command.chunks,
                    options=command.options,
                    links=command.links,
                )
            ]
        case PauseCampaign():
            return [ev.CampaignPaused(campaign_id=state.campaign_id, reason=command.reason)]
        case ResumeCampaign():
            return [
                ev.CampaignResumed(
                    campaign_id=state.campaign_id, run_id=command.run_id, chunks=command.chunks
                )
            ]
        case CancelCampaign():
            return [ev.CampaignCancelled(campaign_id=state.campaign_id)]
        case ShareCampaign():
            if command.user_id in state.shared_with or command.user_id == state.owner_id:
                return []
            return [ev.CampaignShared(campaign_id=state.campaign_id, user_id=command.user_id)]
        case UnshareCampaign():
            if command.user_id not in state.shared_with:
                return []
            return [ev.CampaignUnshared(campaign_id=state.campaign_id, user_id=command.user_id)]
    raise TypeError(f"unknown command {command!r}")


def _check_status(state: CampaignState, command: Command) -> None:
    allowed = ALLOWED_FROM.get(type(command))
    if allowed is None or state.status in allowed:
        return
    if isinstance(command, ChangeRecipients):
        raise CampaignLocked(state.status, command.action)
    if type(command) in _LOCKED_VERBS:
        raise CampaignLocked(state.status, _LOCKED_VERBS[type(command)])
    raise InvalidTransition(state.status, _VERBS[type(command)])


def _update(state: CampaignState, changes: dict[str, Any]) -> list[ev.Event]:
    unknown = set(changes) - set(CONTENT_FIELDS)
    if unknown:
        raise ValueError(f"not campaign content: {sorted(unknown)}")
    for name in ("name", "subject", "template_markdown"):
        if name in changes and changes[name] is None:
            raise Invalid("validation_error", f"{name}: must not be null", field=name)
    check_templates(changes.get("subject"), changes.get("template_markdown"))
    current = {name: getattr(state, name) for name in CONTENT_FIELDS}
    changed = sorted(name for name, value in changes.items() if current[name] != value)
    if not changed:
        return []
    return [
        ev.CampaignUpdated(campaign_id=state.campaign_id, **{**current, **changes}, changed=changed)
    ]
