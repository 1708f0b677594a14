"""The annotation every tool carries, by kind of tool. Clients treat a tool without hints
as destructive, so none goes without. Open world: only tools that reach people or outside
servers (mail is sent, a mailbox is contacted)."""

from __future__ import annotations

from mcp.types import ToolAnnotations


def hints(
    *, read_only: bool, destructive: bool, idempotent: bool, open_world: bool
) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


READ = hints(read_only=True, destructive=False, idempotent=True, open_world=False)
# A create with an idempotency key is safe to retry, but without one it is not.
CREATE = hints(read_only=False, destructive=False, idempotent=False, open_world=False)
UPDATE = hints(read_only=False, destructive=True, idempotent=True, open_world=False)
DELETE = hints(read_only=False, destructive=True, idempotent=True, open_world=False)
# State changes of a campaign (pause, resume, cancel, schedule).
COMMAND = hints(read_only=False, destructive=True, idempotent=False, open_world=False)
# Sends mail to people or talks to a mail server.
SEND = hints(read_only=False, destructive=True, idempotent=False, open_world=True)
CONTACT = hints(read_only=False, destructive=False, idempotent=True, open_world=True)
