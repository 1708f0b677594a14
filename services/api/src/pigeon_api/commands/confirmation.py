"""What a send would do, for the confirmation a person sees before sending live: how many
recipients, how many of them are suppressed, so how many people will get it (the sender
checks suppressions again at send time), and what would stop it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pigeon_api.commands.loading import campaign_for
from pigeon_api.context import SQL
from pigeon_common.domain import campaign as rules
from pigeon_common.domain.access import Action, Actor
from pigeon_common.domain.errors import RuleError
from pigeon_common.events import SendOptions
from pigeon_common.read_models import NIL_MAILBOX


@dataclass(frozen=True, slots=True)
class SendSummary:
    status: str
    recipients: int
    suppressed: int
    would_send: int
    problems: list[str] = field(default_factory=list)

    @property
    def can_send(self) -> bool:
        return not self.problems


async def send_summary(conn: Any, actor: Actor, campaign_id: uuid.UUID) -> SendSummary:
    state = await campaign_for(conn, actor, campaign_id, Action.CAMPAIGN_OPERATE)
    problems: list[str] = []
    try:  # the lifecycle rule, with placeholder numbers (the send computes the real ones)
        options = SendOptions(batch_size=1)
        rules.decide(state, rules.StartSending(uuid.UUID(int=0), 0, 0, options, []))
    except RuleError as exc:
        problems.append(exc.message)
    if state.mailbox_id is None:
        problems.append("the campaign has no mailbox: pick one in the editor")
    counts = await conn.fetchrow(SQL.send_count, campaign_id, state.mailbox_id or NIL_MAILBOX)
    recipients, suppressed = int(counts["recipients"]), int(counts["suppressed"])
    if recipients == 0:
        problems.append("the campaign has no recipients")
    would_send = max(recipients - suppressed, 0) if not problems else 0
    return SendSummary(state.status.value, recipients, suppressed, would_send, problems)
