"""RFC 3464 delivery status notifications: the per-recipient fields of a report.

A report is any message/delivery-status (or RFC 6533 message/global-delivery-status) part,
also inside an attached message (a bounce forwarded by a gateway or a person). Its first
field block is about the message; every later block naming a recipient is about that one:

- the address is Original-Recipient when it names one (that is what we sent to), else
  Final-Recipient; types other than rfc822 and utf-8 (x400, unknown) are not addresses;
- Action `failed` (also `failure`, `error`, and comments after the word) is a bounce,
  `delayed` a deferral; `delivered`, `relayed` and `expanded` are no failure at all; a block
  without an Action takes it from its status class;
- the status is the Status field, unless that is missing or vague (X.Y.0, "other") and
  the Diagnostic-Code names a specific one ("Status: 5.0.0" with "550 5.7.1 spam" is 5.7.1);
- the diagnostic is the Diagnostic-Code without its type ("smtp;", "X-Postfix;").

Hard or soft follows `hardness` with a soft default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from enum import StrEnum

from pigeon_common.smtp_outcomes import enhanced_status
from pigeon_common.validation import MAX_ADDRESS_LENGTH, address_key
from pigeon_imap_sync.hardness import bounced_recipient
from pigeon_imap_sync.inbound import Action, BouncedRecipient
from pigeon_imap_sync.mailtext import BLANK_LINE, header_text, part_text, walk_parts
from pigeon_imap_sync.paragraph import notice_text, paragraph_about

NOTICE_CHARS = 64 * 1024
REPORT_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
ADDRESS_TYPES = frozenset({"rfc822", "utf-8"})
FAILURE_ACTIONS = frozenset({Action.FAILED, Action.DELAYED})


class Field(StrEnum):
    ORIGINAL_RECIPIENT = "Original-Recipient"
    FINAL_RECIPIENT = "Final-Recipient"
    ACTION = "Action"
    STATUS = "Status"
    DIAGNOSTIC_CODE = "Diagnostic-Code"


# Leading words of an Action value, as MTAs write it.
_ACTION_WORDS: tuple[tuple[str, Action], ...] = (
    ("fail", Action.FAILED),
    ("error", Action.FAILED),  # OpenSMTPD
    ("delay", Action.DELAYED),
    ("deliver", Action.DELIVERED),
    ("relay", Action.RELAYED),
    ("expand", Action.EXPANDED),
)
_ACTION_OF_CLASS = {"5": Action.FAILED, "4": Action.DELAYED, "2": Action.DELIVERED}
# No quotes, brackets or braces: a JSON or header fragment is no recipient.
_ADDRESS = re.compile(r"[^\s<>@;,\"'()\[\]{}\\]+@[^\s<>@;,\"'()\[\]{}\\]+")
_INLINE_FIELD = re.compile(
    r"^\s*(Final-Recipient|Original-Recipient|Action|Status|Diagnostic-Code|Remote-MTA|"
    r"Reporting-MTA|Last-Attempt-Date|Arrival-Date|Will-Retry-Until|X-[\w-]+)\s*:",
    re.IGNORECASE,
)
_INLINE_RECIPIENT = re.compile(r"^\s*(?:Final|Original)-Recipient\s*:", re.IGNORECASE | re.M)
_DIAGNOSTIC_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*\s*;\s*")


@dataclass(frozen=True)
class Report:
    """What one message's delivery status parts say, recipient by recipient."""

    failures: tuple[BouncedRecipient, ...]  # Action failed or delayed, in report order
    other_actions: frozenset[Action]  # delivered, relayed, expanded


def read_report(msg: Message) -> Report | None:
    """The report in `msg`, or None when it has no status block naming a recipient."""
    failures: dict[tuple[str, Action], BouncedRecipient] = {}  # first of each, in order
    others: set[Action] = set()
    notice = _notice(msg)
    blocks = list(_recipient_blocks(msg))
    if not any(header_text(b, Field.ACTION) or header_text(b, Field.STATUS) for b in blocks):
        blocks = list(_inline_blocks(msg))
    for block in blocks:
        entry = _read_block(block, notice)
        if entry is None:
            continue
        if entry.action in FAILURE_ACTIONS:
            failures.setdefault((address_key(entry.email), entry.action), entry)
        else:
            others.add(entry.action)
    if not failures and not others:
        return None
    return Report(tuple(failures.values()), frozenset(others))


def _notice(msg: Message) -> str:
    """The human-readable text of a report: its first text/plain part."""
    for part in walk_parts(msg):
        if part.get_content_type() == "text/plain":
            return notice_text(part_text(part)[:NOTICE_CHARS])
    return ""


def _recipient_blocks(msg: Message) -> Iterator[Message]:
    for part in walk_parts(msg):
        if part.get_content_type() in REPORT_TYPES:
            # The block about the message itself (Reporting-MTA, ...) names no recipient,
            # so `_read_block` passes over it like any other block without one.
            yield from _field_blocks(part)


def _inline_blocks(msg: Message) -> Iterator[Message]:
    """Report fields written into a text part (Amazon WorkMail, a multipart whose boundary
    is broken): each run of field lines, up to a blank or other line or a repeated field,
    is one block."""
    for part in walk_parts(msg):
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        text = part_text(part)[:NOTICE_CHARS]
        if not _INLINE_RECIPIENT.search(text):
            continue
        parser = HeaderParser(policy=compat32)
        for lines in _field_runs(text):
            yield parser.parsestr("\n".join(lines) + "\n")


def _field_runs(text: str) -> Iterator[list[str]]:
    run: list[str] = []
    names: set[str] = set()
    for line in text.splitlines():
        field = _INLINE_FIELD.match(line)
        if field is not None:
            name = field.group(1).lower()
            if name in names:
                yield run
                run, names = [], set()
            run.append(line.strip())
            names.add(name)
        elif run and line[:1] in (" ", "\t") and line.strip():
            run.append(" " + line.strip())  # a folded field
        elif run:
            yield run
            run, names = [], set()
    if run:
        yield run


def _field_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if not isinstance(payload, list):  # a part built by hand: text only
        return _split_blocks(part_text(part))
    blocks: list[Message] = []
    for block in payload:
        if isinstance(block, Message):
            # message/delivery-status comes parsed into blocks with empty bodies; the
            # global kind is parsed like an attached message: its first block becomes the
            # header and the other blocks its body.
            blocks += [block, *_split_blocks(part_text(block))]
    return blocks


def _split_blocks(text: str) -> list[Message]:
    parser = HeaderParser(policy=compat32)
    return [parser.parsestr(chunk) for chunk in BLANK_LINE.split(text) if chunk.strip()]


def _read_block(block: Message, notice: str) -> BouncedRecipient | None:
    address = _address(header_text(block, Field.ORIGINAL_RECIPIENT)) or _address(
        header_text(block, Field.FINAL_RECIPIENT)
    )
    status_field = enhanced_status(header_text(block, Field.STATUS)) or ""
    action = _action(header_text(block, Field.ACTION), status_field)
    if not address or action is None:
        return None
    diagnostic = _DIAGNOSTIC_TYPE.sub("", header_text(block, Field.DIAGNOSTIC_CODE))
    context = paragraph_about(address, notice) if notice else ""
    return bounced_recipient(address, action, status_field, diagnostic, context)


def _address(value: str) -> str:
    """The address of a recipient field ("rfc822; a@b", "<a@b>"), '' for anything else."""
    kind, separator, rest = value.partition(";")
    if separator and kind.strip().lower() not in ADDRESS_TYPES:
        return ""
    words = (rest if separator else value).split()
    candidate = words[0].strip("<>") if words else ""
    if len(candidate) > MAX_ADDRESS_LENGTH or not _ADDRESS.fullmatch(candidate):
        return ""
    return candidate


def _action(value: str, status: str) -> Action | None:
    word = value.strip().lower()
    if not word:
        return _ACTION_OF_CLASS.get(status[:1])
    for prefix, action in _ACTION_WORDS:
        if word.startswith(prefix):
            return action
    return None
