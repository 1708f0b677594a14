"""What a classified mail means as events: pure, given the messages it was matched to.

Matching (done by `sync.py` with the read model) finds, for each bounced recipient, the
message it is about: one of our Message-IDs quoted in the bounce whose recipient has that
address, else the last message sent to that address from this mailbox. A reply or an
auto-reply is matched by the Message-IDs in its In-Reply-To / References; an auto-reply
that quotes none falls back to the last message sent to its sender.

The suppression rule (DESIGN invariant 4, reasons in `hardness`): a hard bounce (the
address itself is bad: user or host unknown) suppresses the address for the mailbox at
once. A *repeatable* soft bounce (a full or disabled mailbox, or a delivery the remote
server gave up on) suppresses it only when it is the `soft_bounce_limit`-th such bounce
of that address, on different messages from the same mailbox, within
`soft_bounce_window_days`. A rejection caused by the message or the sender (policy,
spam, blocked, content, size), or one nobody explained, never suppresses the address: it
says nothing about the address, and counting it would suppress a whole provider's users
the day the sending server lands on a block list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pigeon_common import events as ev
from pigeon_imap_sync.hardness import is_repeatable
from pigeon_imap_sync.inbound import Action, BouncedRecipient, Inbound, InboundKind
from pigeon_imap_sync.mailtext import one_line

TEXT_LIMIT = 500  # subjects and diagnostics are stored on one line, at most this long


@dataclass(frozen=True)
class MessageRef:
    """A message MC Pigeon sent: its campaign, recipient, address and mailbox."""

    campaign_id: uuid.UUID
    recipient_id: uuid.UUID
    email: str
    mailbox_id: uuid.UUID | None


@dataclass(frozen=True)
class Source:
    """Where a mail was read: mailbox, folder, UIDVALIDITY and UID."""

    mailbox_id: uuid.UUID
    folder: str
    uidvalidity: int
    uid: int

    @property
    def key(self) -> str:
        return f"{self.mailbox_id}:{self.uidvalidity}:{self.uid}"


@dataclass(frozen=True)
class Planned:
    """One event to store, with the message id that makes a re-read store it once."""

    event: ev.Event
    aggregate_id: str
    msg_id: str


def repeatable(bounced: BouncedRecipient) -> bool:
    """Whether a soft bounce counts toward the repeat limit (`hardness.REPEATABLE_REASONS`:
    a full or disabled mailbox, a delivery given up on); never a policy, spam, content or
    size rejection, nor one we could not explain."""
    return not bounced.hard and is_repeatable(bounced.action, bounced.reason)


def bounce_event(
    ref: MessageRef, bounced: BouncedRecipient, source: Source, *, suppress: bool
) -> Planned:
    event: ev.Event
    if bounced.action is Action.DELAYED:
        event = ev.MessageDeferred(
            campaign_id=ref.campaign_id,
            recipient_id=ref.recipient_id,
            email=ref.email,
            status=bounced.status,
            diagnostic=one_line(bounced.diagnostic, TEXT_LIMIT),
            source=source.key,
        )
        kind = "deferred"
    else:
        event = ev.MessageBounced(
            campaign_id=ref.campaign_id,
            recipient_id=ref.recipient_id,
            email=ref.email,
            mailbox_id=ref.mailbox_id,
            hard=bounced.hard,
            status=bounced.status,
            action=str(bounced.action),
            diagnostic=one_line(bounced.diagnostic, TEXT_LIMIT),
            suppress=suppress,
            source=source.key,
            repeatable=repeatable(bounced),
            reason=bounced.reason,
            evidence=bounced.evidence,
        )
        kind = "bounced"
    return Planned(event, str(ref.campaign_id), _msg_id(kind, source, ref))


def reply_event(ref: MessageRef, inbound: Inbound, source: Source) -> Planned:
    fields = {
        "campaign_id": ref.campaign_id,
        "recipient_id": ref.recipient_id,
        "from_address": one_line(inbound.sender, 320),
        "subject": one_line(inbound.subject, TEXT_LIMIT),
        "reply_message_id": one_line(inbound.message_id, 998),
        "source": source.key,
    }
    if inbound.kind is InboundKind.AUTO_REPLY:
        return Planned(
            ev.MessageAutoReplied(**fields), str(ref.campaign_id), _msg_id("auto", source, ref)
        )
    return Planned(ev.MessageReplied(**fields), str(ref.campaign_id), _msg_id("reply", source, ref))


def skipped_event(source: Source, kind: str, reason: str) -> Planned:
    event = ev.InboundSkipped(
        mailbox_id=source.mailbox_id,
        folder=source.folder,
        uidvalidity=source.uidvalidity,
        uid=source.uid,
        kind="unparsed" if kind == "unparsed" else "unmatched",
        reason=one_line(reason, TEXT_LIMIT) or kind,
        source=source.key,
    )
    return Planned(event, str(source.mailbox_id), f"inbound:{source.key}:skipped")


def suppresses(bounced: BouncedRecipient, earlier_soft_bounces: int, soft_limit: int) -> bool:
    """Whether this bounce suppresses the address (the rule in the module docstring);
    `earlier_soft_bounces`: repeatable soft bounces of the address on other messages."""
    if bounced.action is Action.DELAYED:
        return False
    if bounced.hard:
        return True
    return repeatable(bounced) and earlier_soft_bounces + 1 >= soft_limit


def _msg_id(kind: str, source: Source, ref: MessageRef) -> str:
    return f"inbound:{source.key}:{kind}:{ref.recipient_id}"
