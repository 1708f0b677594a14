"""Which reasons suppress an address: the rule of DESIGN invariant 4, over `reasons.Reason`.

- Hard (suppress at once): the address itself is bad, USER_UNKNOWN or HOST_UNKNOWN, on a
  recipient that failed for good. Nothing else is hard.
- Repeatable (suppress when it repeats, see `plan.suppresses`): a full mailbox, a disabled
  or suspended mailbox, a delivery the sending side gave up on (EXPIRED).
- Never: a cause in the message or the sender (BLOCKED, SPAM, POLICY, AUTH_FAILURE,
  TOO_LARGE), REJECTED (no reason given) and UNKNOWN: a failure we cannot explain says
  nothing about the address, and guessing would suppress valid ones.
"""

from __future__ import annotations

from pigeon_imap_sync.inbound import Action, BouncedRecipient
from pigeon_imap_sync.mailtext import one_line
from pigeon_imap_sync.reasons import Reason, judge

MAX_DIAGNOSTIC_CHARS = 500
MAX_EVIDENCE_CHARS = 200

HARD_REASONS = frozenset({Reason.USER_UNKNOWN, Reason.HOST_UNKNOWN})
REPEATABLE_REASONS = frozenset({Reason.MAILBOX_FULL, Reason.SUSPEND, Reason.EXPIRED})


def is_hard(action: Action, reason: Reason) -> bool:
    """The address itself is bad: suppress it at once."""
    return action is Action.FAILED and reason in HARD_REASONS


def is_repeatable(action: Action, reason: Reason) -> bool:
    """A soft failure that suppresses the address when it repeats."""
    return action is Action.FAILED and reason in REPEATABLE_REASONS


def bounced_recipient(
    email: str, action: Action, status_field: str, diagnostic: str, context: str = ""
) -> BouncedRecipient:
    """One recipient with its reason (`reasons.judge`) and the hard rule applied;
    `diagnostic` is kept, on one line, as the remote server's words."""
    judgement = judge(status_field, diagnostic, context, failed=action is Action.FAILED)
    return BouncedRecipient(
        email=email,
        action=action,
        status=judgement.status,
        diagnostic=one_line(diagnostic, MAX_DIAGNOSTIC_CHARS),
        hard=is_hard(action, judgement.reason),
        reason=judgement.reason,
        evidence=one_line(judgement.evidence, MAX_EVIDENCE_CHARS),
    )
