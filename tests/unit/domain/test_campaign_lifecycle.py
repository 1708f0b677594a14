"""Every campaign transition: each command from each status gives its events or the
rule error, with no server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pigeon_common import events as ev
from pigeon_common.domain import campaign as rules
from pigeon_common.domain.errors import Conflict, Invalid
from pigeon_common.domain.status import EDITABLE, CampaignStatus

CAMPAIGN = uuid.uuid4()
OWNER, OTHER = uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
OPTIONS = ev.SendOptions(batch_size=100)
RUN = uuid.uuid4()


def _state(status: CampaignStatus, **changes: Any) -> rules.CampaignState:
    values: dict[str, Any] = {
        "campaign_id": CAMPAIGN,
        "status": status,
        "name": "Spring",
        "subject": "Hello {{ recipient.name }}",
        "template_markdown": "# Hi",
        "mailbox_id": None,
        "owner_id": OWNER,
        "shared_with": frozenset(),
        **changes,
    }
    return rules.CampaignState(**values)


COMMANDS: dict[str, tuple[rules.Command, type[ev.Event] | None]] = {
    "update": (rules.UpdateCampaign({"name": "Summer"}), ev.CampaignUpdated),
    "delete": (rules.DeleteCampaign(), ev.CampaignDeleted),
    "recipients": (rules.ChangeRecipients(), None),
    "schedule": (
        rules.ScheduleCampaign(NOW + timedelta(hours=1), OPTIONS, NOW),
        ev.CampaignScheduled,
    ),
    "start": (rules.StartSending(RUN, 10, 1, OPTIONS, []), ev.CampaignSendingStarted),
    "unschedule": (rules.UnscheduleCampaign(), ev.CampaignUnscheduled),
    "pause": (rules.PauseCampaign("by ann"), ev.CampaignPaused),
    "resume": (rules.ResumeCampaign(RUN, 2), ev.CampaignResumed),
    "cancel": (rules.CancelCampaign(), ev.CampaignCancelled),
}
ALLOWED = {
    "update": EDITABLE,
    "delete": EDITABLE,
    "recipients": EDITABLE,
    "schedule": EDITABLE,
    "start": EDITABLE,
    "unschedule": {CampaignStatus.SCHEDULED},
    "pause": {CampaignStatus.SENDING},
    "resume": {CampaignStatus.PAUSED},
    "cancel": {CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED},
}


@pytest.mark.parametrize("status", list(CampaignStatus))
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_from_every_status(status: CampaignStatus, name: str) -> None:
    command, event_type = COMMANDS[name]
    if status in ALLOWED[name]:
        events = rules.decide(_state(status), command)
        assert [type(e) for e in events] == ([event_type] if event_type else [])
        assert all(getattr(e, "campaign_id", CAMPAIGN) == CAMPAIGN for e in events)
        return
    with pytest.raises(Conflict) as refused:
        rules.decide(_state(status), command)
    content_change = name in ("update", "delete", "recipients")
    assert refused.value.code == ("campaign_locked" if content_change else "invalid_status")
    assert status.value in refused.value.message


def test_create_records_the_owner() -> None:
    command = rules.CreateCampaign(CAMPAIGN, OWNER, "Spring", "Hi", "# Hi", None)
    [event] = rules.decide(None, command)
    assert isinstance(event, ev.CampaignCreated) and event.owner_id == OWNER


@pytest.mark.parametrize(
    ("subject", "template", "field"),
    [("{{ broken", "# Hi", "subject"), ("Hi", "{% for %}", "template_markdown")],
)
def test_templates_are_checked_on_create_and_update(
    subject: str, template: str, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        rules.decide(None, rules.CreateCampaign(CAMPAIGN, OWNER, "n", subject, template, None))
    assert refused.value.code == "template_error" and refused.value.field == field
    changes = {"subject": subject, "template_markdown": template}
    with pytest.raises(Invalid):
        rules.decide(_state(CampaignStatus.DRAFT), rules.UpdateCampaign(changes))


def test_an_update_that_changes_nothing_stores_nothing() -> None:
    unchanged = rules.UpdateCampaign({"name": "Spring"})
    assert rules.decide(_state(CampaignStatus.DRAFT), unchanged) == []


def test_an_update_names_what_changed_and_carries_the_whole_state() -> None:
    [event] = rules.decide(
        _state(CampaignStatus.SCHEDULED), rules.UpdateCampaign({"name": "Summer"})
    )
    assert isinstance(event, ev.CampaignUpdated)
    assert event.changed == ["name"] and event.subject == "Hello {{ recipient.name }}"


@pytest.mark.parametrize("name", ["name", "subject", "template_markdown"])
def test_required_content_cannot_be_nulled(name: str) -> None:
    with pytest.raises(Invalid) as refused:
        rules.decide(_state(CampaignStatus.DRAFT), rules.UpdateCampaign({name: None}))
    assert refused.value.field == name


def test_a_schedule_in_the_past_is_refused() -> None:
    command = rules.ScheduleCampaign(NOW - timedelta(seconds=1), OPTIONS, NOW)
    with pytest.raises(Invalid) as refused:
        rules.decide(_state(CampaignStatus.DRAFT), command)
    assert refused.value.field == "send_at"


@pytest.mark.parametrize("status", list(CampaignStatus))
def test_clone_works_from_any_status_and_belongs_to_the_cloner(status: CampaignStatus) -> None:
    new_id = uuid.uuid4()
    [event] = rules.decide(_state(status), rules.CloneCampaign(new_id, OTHER))
    assert isinstance(event, ev.CampaignCreated)
    assert (event.campaign_id, event.owner_id, event.cloned_from) == (new_id, OTHER, CAMPAIGN)
    assert event.name == "Spring (copy)" and event.template_markdown == "# Hi"


def test_sharing_twice_or_with_the_owner_stores_nothing() -> None:
    shared = _state(CampaignStatus.DRAFT, shared_with=frozenset({OTHER}))
    assert rules.decide(shared, rules.ShareCampaign(OTHER)) == []
    assert rules.decide(shared, rules.ShareCampaign(OWNER)) == []
    assert [type(e) for e in rules.decide(shared, rules.UnshareCampaign(OTHER))] == [
        ev.CampaignUnshared
    ]
    assert rules.decide(_state(CampaignStatus.DONE), rules.UnshareCampaign(OTHER)) == []
    [event] = rules.decide(_state(CampaignStatus.DONE), rules.ShareCampaign(OTHER))
    assert isinstance(event, ev.CampaignShared) and event.user_id == OTHER
