"""Every cell of the access policy: role × relation to the resource × action × scope."""

from __future__ import annotations

import uuid

import pytest

from pigeon_common.domain.access import (
    EVERY_MAILBOX,
    READS,
    WRITES,
    Action,
    Actor,
    Kind,
    Resource,
    Role,
    Scope,
    authorize,
    can,
    list_scope,
    suppressions_scope,
    usable_mailboxes_scope,
)
from pigeon_common.domain.errors import Forbidden, NotFound

OWNER, SHAREE, STRANGER = (uuid.uuid4() for _ in range(3))
MAILBOX_ACTIONS = [a for a in Action if a.value.startswith(("mailbox.", "suppressions."))]
MAILBOX_ACTIONS.remove(Action.MAILBOX_CREATE)
CAMPAIGN_ACTIONS = [a for a in Action if a.value.startswith("campaign.")]
CAMPAIGN_ACTIONS.remove(Action.CAMPAIGN_CREATE)


def _resource(kind: Kind) -> Resource:
    return Resource(kind, OWNER, frozenset({SHAREE}))


def _verdict(actor: Actor, action: Action, resource: Resource | None = None) -> str:
    try:
        authorize(actor, action, resource)
    except NotFound:
        return "404"
    except Forbidden:
        return "403"
    return "ok"


def _expected_mailbox(role: Role, who: uuid.UUID, action: Action) -> str:
    if role is Role.ADMIN:
        return "ok"
    if who == STRANGER:
        return "404"
    if role is Role.VIEWER and action in WRITES:
        return "403"
    if who == OWNER:
        return "ok"
    return "ok" if action is Action.MAILBOX_USE else "403"  # a sharee only sends through it


def _expected_campaign(role: Role, who: uuid.UUID, action: Action) -> str:
    if role is Role.ADMIN:
        return "ok"
    if who == STRANGER:
        return "404"
    if action is Action.CAMPAIGN_VIEW:
        return "ok"
    if role is Role.VIEWER:
        return "403"
    if who == OWNER:
        return "ok"
    # A member it is shared with edits and operates it, but does not delete or share it.
    return "403" if action in (Action.CAMPAIGN_DELETE, Action.CAMPAIGN_SHARE) else "ok"


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("who", [OWNER, SHAREE, STRANGER], ids=["owner", "sharee", "stranger"])
@pytest.mark.parametrize("action", MAILBOX_ACTIONS)
def test_mailbox_cells(role: Role, who: uuid.UUID, action: Action) -> None:
    actor = Actor(who, role)
    assert _verdict(actor, action, _resource(Kind.MAILBOX)) == _expected_mailbox(role, who, action)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("who", [OWNER, SHAREE, STRANGER], ids=["owner", "sharee", "stranger"])
@pytest.mark.parametrize("action", CAMPAIGN_ACTIONS)
def test_campaign_cells(role: Role, who: uuid.UUID, action: Action) -> None:
    actor = Actor(who, role)
    expected = _expected_campaign(role, who, action)
    assert _verdict(actor, action, _resource(Kind.CAMPAIGN)) == expected


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("who", [OWNER, SHAREE, STRANGER], ids=["owner", "sharee", "stranger"])
@pytest.mark.parametrize("action", sorted(WRITES & {*MAILBOX_ACTIONS, *CAMPAIGN_ACTIONS}))
def test_a_read_only_token_never_writes(role: Role, who: uuid.UUID, action: Action) -> None:
    kind = Kind.CAMPAIGN if action.value.startswith("campaign.") else Kind.MAILBOX
    verdict = _verdict(Actor(who, role, Scope.READ), action, _resource(kind))
    # Still no existence leak: a stranger's answer is 404 whatever the scope.
    assert verdict == ("404" if who == STRANGER and role is not Role.ADMIN else "403")


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("who", [OWNER, SHAREE], ids=["owner", "sharee"])
@pytest.mark.parametrize("action", sorted(READS - {Action.ACCOUNT_VIEW}))
def test_a_read_only_token_reads_what_its_user_may(
    role: Role, who: uuid.UUID, action: Action
) -> None:
    kind = Kind.CAMPAIGN if action.value.startswith("campaign.") else Kind.MAILBOX
    resource = _resource(kind)
    assert can(Actor(who, role, Scope.READ), action, resource) == can(
        Actor(who, role), action, resource
    )


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("scope", list(Scope))
@pytest.mark.parametrize(
    "action",
    [
        Action.MAILBOX_CREATE,
        Action.CAMPAIGN_CREATE,
        Action.USERS_MANAGE,
        Action.ACCOUNT_VIEW,
        Action.ACCOUNT_EDIT,
    ],
)
def test_actions_without_a_resource(role: Role, scope: Scope, action: Action) -> None:
    allowed = {
        Action.MAILBOX_CREATE: role is not Role.VIEWER,
        Action.CAMPAIGN_CREATE: role is not Role.VIEWER,
        Action.USERS_MANAGE: role is Role.ADMIN,
        Action.ACCOUNT_VIEW: True,
        Action.ACCOUNT_EDIT: True,
    }[action]
    if action in WRITES and scope is Scope.READ:
        allowed = False
    assert can(Actor(uuid.uuid4(), role, scope), action) is allowed


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", [Action.SUPPRESSIONS_VIEW, Action.SUPPRESSIONS_EDIT])
def test_suppressions_of_every_mailbox_are_the_admins(role: Role, action: Action) -> None:
    verdict = _verdict(Actor(OWNER, role), action, EVERY_MAILBOX)
    assert verdict == ("ok" if role is Role.ADMIN else "403")


def test_a_resource_from_before_owners_is_the_admins_only() -> None:
    orphan = Resource(Kind.CAMPAIGN, owner_id=None)
    assert can(Actor(OWNER, Role.ADMIN), Action.CAMPAIGN_EDIT, orphan)
    assert _verdict(Actor(OWNER, Role.MEMBER), Action.CAMPAIGN_VIEW, orphan) == "404"


def test_an_action_on_a_resource_needs_the_resource() -> None:
    with pytest.raises(ValueError):
        authorize(Actor(OWNER, Role.ADMIN), Action.CAMPAIGN_VIEW)


@pytest.mark.parametrize("role", list(Role))
def test_list_scopes(role: Role) -> None:
    actor = Actor(OWNER, role)
    admin = role is Role.ADMIN
    assert list_scope(actor, Kind.CAMPAIGN).everything is admin
    assert list_scope(actor, Kind.CAMPAIGN).include_shared
    # Mailbox lists show settings: shared mailboxes are only in the usable list.
    assert not list_scope(actor, Kind.MAILBOX).include_shared
    assert usable_mailboxes_scope(actor).include_shared
    assert suppressions_scope(actor).everything is admin
    assert not suppressions_scope(actor).include_shared
