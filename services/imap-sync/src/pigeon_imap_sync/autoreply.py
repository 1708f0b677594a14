"""Automatic replies: RFC 3834's Auto-Submitted and the common out-of-office markers.

A message is an auto-reply when any of these holds:

- Auto-Submitted is present and not `no` (auto-replied, auto-generated, auto-notified);
- X-Autoreply, X-Autorespond or X-Autoresponder is present (with any value but a "no");
- Precedence is `auto_reply`;
- the subject starts with a marker such as "Out of Office", "Automatic reply", "Auto:",
  "Abwesenheitsnotiz" or "Réponse automatique";
- a weak sign, X-Auto-Response-Suppress (Microsoft) or Precedence bulk, junk or list, comes
  with a marker anywhere in the subject. Alone, those are set on much mail that is no
  auto-reply (list traffic, system notices), so they only confirm a subject.

Checked after the bounce detectors: a DSN carries Auto-Submitted too, and stays a bounce.
"""

from __future__ import annotations

from email.message import Message
from enum import StrEnum

from pigeon_imap_sync.mailtext import header_text


class Field(StrEnum):
    AUTO_SUBMITTED = "Auto-Submitted"
    X_AUTOREPLY = "X-Autoreply"
    X_AUTORESPOND = "X-Autorespond"
    X_AUTORESPONDER = "X-Autoresponder"
    X_AUTO_RESPONSE_SUPPRESS = "X-Auto-Response-Suppress"
    PRECEDENCE = "Precedence"


AUTO_RESPONDER_FIELDS = (Field.X_AUTOREPLY, Field.X_AUTORESPOND, Field.X_AUTORESPONDER)
_NEGATIVE_VALUES = frozenset({"no", "false", "0", "off"})
_WEAK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
# Case-folded subject markers of out-of-office and other automatic answers.
SUBJECT_MARKERS = (
    "out of office",
    "out of the office",
    "automatic reply",
    "automatic response",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "auto:",
    "on vacation",
    "vacation reply",
    "away from the office",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "risposta automatica",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "resposta automática",
    "automatisch antwoord",
    "afwezigheidsbericht",
    "automatiskt svar",
    "automatisk svar",
    "automaattinen vastaus",
    "odpowiedź automatyczna",
    "automatická odpověď",
)


def is_auto_reply(msg: Message, subject: str) -> bool:
    """True when `msg` (whose decoded subject is `subject`) was sent by a machine."""
    auto_submitted = _first_word(header_text(msg, Field.AUTO_SUBMITTED))
    if auto_submitted and auto_submitted != "no":
        return True
    if any(_says_yes(msg, name) for name in AUTO_RESPONDER_FIELDS):
        return True
    precedence = _first_word(header_text(msg, Field.PRECEDENCE))
    if precedence == "auto_reply":
        return True
    folded = subject.casefold().lstrip()
    if folded.startswith(SUBJECT_MARKERS):
        return True
    weak = precedence in _WEAK_PRECEDENCE or msg.get(Field.X_AUTO_RESPONSE_SUPPRESS) is not None
    return weak and any(marker in folded for marker in SUBJECT_MARKERS)


def _first_word(value: str) -> str:
    # "auto-replied; owner-email=..." and "auto-generated (comment)" name their kind first.
    words = value.replace(";", " ").replace("(", " ").split()
    return words[0].lower() if words else ""


def _says_yes(msg: Message, name: str) -> bool:
    if msg.get(name) is None:
        return False
    return _first_word(header_text(msg, name)) not in _NEGATIVE_VALUES
