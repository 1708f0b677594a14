"""Which campaign states may still change."""

from __future__ import annotations

import pytest

from pigeon_common.campaigns import CampaignLockedError, CampaignStatus, ensure_editable

EDITABLE = {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED}


def test_every_status_is_covered() -> None:
    assert {s.value for s in CampaignStatus} == {
        "draft",
        "scheduled",
        "sending",
        "paused",
        "done",
        "cancelled",
        "failed",
    }


@pytest.mark.parametrize("status", sorted(EDITABLE))
def test_editable_statuses(status: CampaignStatus) -> None:
    ensure_editable(status)
    ensure_editable(status.value, "deleted")  # a plain string from a database row works too


@pytest.mark.parametrize("status", sorted(set(CampaignStatus) - EDITABLE))
@pytest.mark.parametrize("action", ["edited", "deleted", "given new recipients"])
def test_locked_statuses(status: CampaignStatus, action: str) -> None:
    with pytest.raises(CampaignLockedError) as caught:
        ensure_editable(status.value, action)
    assert caught.value.status == status.value
    assert caught.value.action == action
    assert status.value in str(caught.value) and action in str(caught.value)


def test_default_action_is_edited() -> None:
    with pytest.raises(CampaignLockedError) as caught:
        ensure_editable(CampaignStatus.SENDING)
    assert caught.value.action == "edited"


@pytest.mark.parametrize("status", ["", "Draft", "DRAFT", "archived", "drafts"])
def test_unknown_status_is_locked(status: str) -> None:
    with pytest.raises(CampaignLockedError):
        ensure_editable(status)
