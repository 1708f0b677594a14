"""The access policy: a pure function of (actor, action, resource).

Roles: an `admin` may do everything and manages users; a `member` creates mailboxes and
campaigns and sees and changes only its own and what is shared with it; a `viewer`
reads what is shared with it. A mailbox shared with a user may be *used* for sending
(picked for a campaign) without its settings being seen or changed. A campaign shared
with a member may be read and changed by it, and read by a viewer; only its owner (or an
administrator) deletes or shares it.

A resource the actor may not know of is `NotFound`, never `Forbidden`: the answer must
not tell whether it exists. A read-only token (scope `read`) is refused every writing
action with `Forbidden`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from pigeon_common.domain.errors import Forbidden, NotFound


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class Scope(StrEnum):
    """What a credential allows: `read` (the read-only token) or `write`."""

    READ = "read"
    WRITE = "write"


class Kind(StrEnum):
    MAILBOX = "mailbox"
    CAMPAIGN = "campaign"


class Action(StrEnum):
    MAILBOX_CREATE = "mailbox.create"
    MAILBOX_VIEW = "mailbox.view"  # its settings, sync state and skipped mail
    MAILBOX_USE = "mailbox.use"  # pick it as a campaign's sender
    MAILBOX_EDIT = "mailbox.edit"
    MAILBOX_DELETE = "mailbox.delete"
    MAILBOX_SHARE = "mailbox.share"
    MAILBOX_SYNC = "mailbox.sync"  # connect to its servers now (sync, test connection)
    SUPPRESSIONS_VIEW = "suppressions.view"
    SUPPRESSIONS_EDIT = "suppressions.edit"
    CAMPAIGN_CREATE = "campaign.create"
    CAMPAIGN_VIEW = "campaign.view"  # the campaign, its recipients and results
    CAMPAIGN_EDIT = "campaign.edit"  # content and recipients
    CAMPAIGN_OPERATE = "campaign.operate"  # dry run, test send, send, schedule, pause…
    CAMPAIGN_DELETE = "campaign.delete"
    CAMPAIGN_SHARE = "campaign.share"
    USERS_MANAGE = "users.manage"
    ACCOUNT_VIEW = "account.view"
    ACCOUNT_EDIT = "account.edit"  # one's own password and tokens


READS = frozenset(
    {
        Action.MAILBOX_VIEW,
        Action.MAILBOX_USE,
        Action.SUPPRESSIONS_VIEW,
        Action.CAMPAIGN_VIEW,
        Action.ACCOUNT_VIEW,
    }
)
WRITES = frozenset(Action) - READS
_CREATORS = frozenset({Role.ADMIN, Role.MEMBER})
_OWNER_ONLY = frozenset(
    {
        Action.MAILBOX_VIEW,
        Action.MAILBOX_EDIT,
        Action.MAILBOX_DELETE,
        Action.MAILBOX_SHARE,
        Action.MAILBOX_SYNC,
        Action.SUPPRESSIONS_VIEW,
        Action.SUPPRESSIONS_EDIT,
        Action.CAMPAIGN_DELETE,
        Action.CAMPAIGN_SHARE,
    }
)
_NO_RESOURCE = frozenset(
    {Action.MAILBOX_CREATE, Action.CAMPAIGN_CREATE, Action.USERS_MANAGE}
    | {Action.ACCOUNT_VIEW, Action.ACCOUNT_EDIT}
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: a user, its role, and the scope of the credential it came with."""

    user_id: uuid.UUID
    role: Role
    scope: Scope = Scope.WRITE
    email: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class Resource:
    """A mailbox or campaign as the policy sees it: its owner and who it is shared with.
    An owner of None (data from before owners existed) is the administrators' only."""

    kind: Kind
    owner_id: uuid.UUID | None
    shared_with: frozenset[uuid.UUID] = field(default_factory=frozenset)

    def is_owned_by(self, actor: Actor) -> bool:
        return self.owner_id is not None and self.owner_id == actor.user_id


_READ_ONLY = "this token is read-only: use the read-write token to change things"
# The resource of the suppressions that hold for every mailbox: administrators' only.
EVERY_MAILBOX = Resource(Kind.MAILBOX, owner_id=None)


def authorize(actor: Actor, action: Action, resource: Resource | None = None) -> None:
    """Return when `actor` may do `action` to `resource`; raise NotFound or Forbidden."""
    if action in _NO_RESOURCE:
        _authorize_plain(actor, action)
        return
    if resource is None:
        raise ValueError(f"{action} needs a resource")
    what = resource.kind.value
    if resource is EVERY_MAILBOX and not actor.is_admin:
        raise Forbidden("only an administrator can see or change suppressions of every mailbox")
    if not _may_know(actor, resource):
        raise NotFound(what)
    if action in WRITES and actor.scope is Scope.READ:
        raise Forbidden(_READ_ONLY)
    if actor.is_admin:
        return
    if action in WRITES and actor.role is Role.VIEWER:
        raise Forbidden(f"a viewer may only read this {what}")
    owner = resource.is_owned_by(actor)
    if action in _OWNER_ONLY:
        if owner:
            return
        raise _refusal(resource, action)
    if resource.kind is Kind.MAILBOX:  # MAILBOX_USE: the owner or a user it is shared with
        return
    # A campaign: read by whoever may know it; changed and operated by its owner or a
    # member it is shared with (viewers were refused every write above).


def can(actor: Actor, action: Action, resource: Resource | None = None) -> bool:
    """Whether `authorize` would allow it (for showing or hiding an action)."""
    try:
        authorize(actor, action, resource)
    except (NotFound, Forbidden):
        return False
    return True


def _may_know(actor: Actor, resource: Resource) -> bool:
    return actor.is_admin or resource.is_owned_by(actor) or actor.user_id in resource.shared_with


def _refusal(resource: Resource, action: Action) -> Forbidden:
    if resource.kind is Kind.MAILBOX:
        return Forbidden("this mailbox is shared with you for sending only")
    return Forbidden(f"only the campaign's owner may {action.value.partition('.')[2]} it")


def _authorize_plain(actor: Actor, action: Action) -> None:
    if action in WRITES and actor.scope is Scope.READ:
        raise Forbidden(_READ_ONLY)
    if action is Action.USERS_MANAGE and not actor.is_admin:
        raise Forbidden("only an administrator can manage users")
    if action in (Action.MAILBOX_CREATE, Action.CAMPAIGN_CREATE) and actor.role not in _CREATORS:
        raise Forbidden("a viewer cannot create mailboxes or campaigns")


@dataclass(frozen=True, slots=True)
class ListScope:
    """Which rows a list shows the actor: every row, or its own plus (when
    `include_shared`) those shared with it. SQL applies it; the rule is decided here."""

    everything: bool
    user_id: uuid.UUID
    include_shared: bool


def list_scope(actor: Actor, kind: Kind) -> ListScope:
    """Mailbox lists show settings, so a mailbox shared for sending is not in them (it is
    in the list of senders the actor may use, `usable_mailboxes_scope`)."""
    return ListScope(actor.is_admin, actor.user_id, include_shared=kind is Kind.CAMPAIGN)


def usable_mailboxes_scope(actor: Actor) -> ListScope:
    """The mailboxes the actor may pick as a campaign's sender."""
    return ListScope(actor.is_admin, actor.user_id, include_shared=True)


def suppressions_scope(actor: Actor) -> ListScope:
    """Suppression lists show the rows of the actor's own mailboxes (all, for an admin)."""
    return ListScope(actor.is_admin, actor.user_id, include_shared=False)
