"""Which actions a page offers: asked of the access policy (`can`), never decided here, so
a page shows exactly the buttons whose URLs would accept the user."""

from __future__ import annotations

from typing import Any

from pigeon_api.commands.loading import resource_of
from pigeon_common.domain import campaign as rules
from pigeon_common.domain.access import Action, Actor, Kind, can
from pigeon_common.domain.status import CampaignStatus


def campaign_permissions(actor: Actor, row: Any) -> dict[str, bool]:
    """`row`: the campaign's row from the loader (it carries owner and shares)."""
    resource = resource_of(Kind.CAMPAIGN, row)
    return {
        "edit": can(actor, Action.CAMPAIGN_EDIT, resource),
        "operate": can(actor, Action.CAMPAIGN_OPERATE, resource),
        "delete": can(actor, Action.CAMPAIGN_DELETE, resource),
        "share": can(actor, Action.CAMPAIGN_SHARE, resource),
        "clone": can(actor, Action.CAMPAIGN_CREATE),
    }


def mailbox_permissions(actor: Actor, row: Any) -> dict[str, bool]:
    resource = resource_of(Kind.MAILBOX, row)
    return {
        "edit": can(actor, Action.MAILBOX_EDIT, resource),
        "delete": can(actor, Action.MAILBOX_DELETE, resource),
        "share": can(actor, Action.MAILBOX_SHARE, resource),
        "sync": can(actor, Action.MAILBOX_SYNC, resource),
    }


def general_permissions(actor: Actor) -> dict[str, bool]:
    """Actions on no one resource."""
    return {
        "create_campaign": can(actor, Action.CAMPAIGN_CREATE),
        "create_mailbox": can(actor, Action.MAILBOX_CREATE),
        "manage_users": can(actor, Action.USERS_MANAGE),
        "edit_account": can(actor, Action.ACCOUNT_EDIT),
    }


# The lifecycle commands a campaign page offers, by the name of their button.
_LIFECYCLE: dict[str, type[Any]] = {
    "edit": rules.UpdateCampaign,
    "send": rules.StartSending,
    "unschedule": rules.UnscheduleCampaign,
    "pause": rules.PauseCampaign,
    "resume": rules.ResumeCampaign,
    "cancel": rules.CancelCampaign,
    "delete": rules.DeleteCampaign,
}


def offered(status: str) -> frozenset[str]:
    """The lifecycle buttons that apply to a campaign in `status` (from the domain's
    table of allowed moves, so a page never offers what the command would refuse)."""
    current = CampaignStatus(status)
    return frozenset(n for n, cmd in _LIFECYCLE.items() if current in rules.ALLOWED_FROM[cmd])
