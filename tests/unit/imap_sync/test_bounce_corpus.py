"""Real bounces from five public test suites (tests/data/bounces, see its LICENSES.md):
the classifier finds the recipient, status class, reason and suppress decision that
`expected.csv` gives, on enough of them, and never suppresses an address that is fine.

Figures are printed (`pytest -s`); a blank expectation is unknown and not counted.
The suppress decision compares the corpus's `hard` (an address-level failure) with our
address-level reasons (user or host unknown, a disabled mailbox; the last suppresses only
when it repeats). A wrong suppression is a recipient we call hard where the corpus says
the address is fine, or any hard recipient in a mail that is no bounce.

`DISAGREEMENTS` lists rows where, after reading the sample, we think the expectation is
wrong; there our value is what is checked, and the reason is given.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pigeon_imap_sync.classify import classify
from pigeon_imap_sync.inbound import Action, BouncedRecipient, Inbound
from pigeon_imap_sync.reasons import ADDRESS_REASONS

CORPUS = Path(__file__).parents[2] / "data" / "bounces"
FAILURE_KINDS = frozenset({"bounce", "deferral"})
MINIMUM = {"recipient": 0.95, "class": 0.90, "reason": 0.90, "suppress": 0.95}

# (file, field) -> (the value we check instead, why the row is wrong).
_FIVE_GMAIL = ";".join(
    f"{local}@gmail.com"
    for local in (
        "bbbbvhvbbvkjbhfbvbvjhb",
        "bscdbcjhasbcjhbdscbhbsdhcbj",
        "egyfefsdvsfvvhjsd",
        "kfhejkfbsjkjsbhds",
        "qfvhgsvhgsduiohncdhcvhsdfvsfygusd",
    )
)
DISAGREEMENTS: dict[tuple[str, str], tuple[str, str]] = {
    ("mikel-mail/multi_address_bounce1.eml", "recipient"): (
        _FIVE_GMAIL,
        "the report has five failed recipient blocks (and the notice five paragraphs); "
        "the row lists four",
    ),
    ("mikel-mail/multi_address_bounce2.eml", "recipient"): (
        _FIVE_GMAIL,
        "the same message as multi_address_bounce1.eml: five failed recipients",
    ),
    ("rjbs-Mail-DeliveryStatus-BounceParser/quota-4.msg", "reason"): (
        "too_large",
        "550 ... max message size exceeded: the message's size, not the mailbox's",
    ),
    ("rjbs-Mail-DeliveryStatus-BounceParser/att-via-sendmail.unknown.msg", "reason"): (
        "suspend",
        "550 [SUSPEND] Mailbox currently suspended: a suspended mailbox, not an unknown user",
    ),
    ("rjbs-Mail-DeliveryStatus-BounceParser/deactivated-mailbox.msg", "reason"): (
        "suspend",
        "551 ... is a deactivated mailbox: disabled, as the file's name says",
    ),
    ("rjbs-Mail-DeliveryStatus-BounceParser/yahoo-via-sendmail.unknown.msg", "reason"): (
        "suspend",
        "Yahoo's 'This account has been disabled or discontinued [#102]', which the corpus "
        "reads as suspend in cfortune 34, 38, 42 and 60",
    ),
    ("rjbs-Mail-DeliveryStatus-BounceParser/aol-senderblock.msg", "reason"): (
        "policy",
        "'not accepting mail with attachments or embedded images', the same text that "
        "aol.attachment.msg expects as policy",
    ),
    ("rjbs-Mail-DeliveryStatus-BounceParser/spam-rejection43.msg", "reason"): (
        "blocked",
        "'Client host [...] blocked using bl.spamcop.net': the sending IP on a DNS block "
        "list, not the message's content",
    ),
    ("cfortune-PHP-Bounce-Handler/44.eml", "reason"): (
        "mailbox_full",
        "'Destinatario desconocido o mailbox lleno' names both; the non-address cause is "
        "read first so that the address is not suppressed on a doubt",
    ),
    ("mitio-bounce_email/tt_bounce_22.txt", "reason"): (
        "user_unknown",
        "the remote server said '550 550 Address unknown (state 14)'",
    ),
}


@dataclass
class Tally:
    agreed: int = 0
    counted: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, ok: bool, note: str) -> None:
        self.counted += 1
        self.agreed += ok
        if not ok:
            self.misses.append(note)

    @property
    def share(self) -> float:
        return self.agreed / self.counted if self.counted else 1.0


@dataclass(frozen=True)
class Row:
    file: str
    kind: str
    recipients: frozenset[str]
    status: str
    hard: bool | None
    reason: str

    def expected(self, name: str, value: str) -> str:
        return DISAGREEMENTS.get((self.file, name), (value, ""))[0]


def _rows() -> Iterator[Row]:
    with (CORPUS / "expected.csv").open(newline="", encoding="utf-8") as handle:
        for line in csv.DictReader(handle):
            listed = DISAGREEMENTS.get((line["file"], "recipient"), (line["recipient"], ""))[0]
            yield Row(
                file=line["file"],
                kind=line["kind"],
                recipients=frozenset(a.casefold() for a in listed.split(";") if a),
                status=line["status"],
                hard={"true": True, "false": False}.get(line["hard"]),
                reason=line["reason"],
            )


def _about(result: Inbound, row: Row) -> BouncedRecipient | None:
    """Our entry for the row's recipient (the first one when the row names none)."""
    for entry in result.recipients:
        if entry.email.casefold() in row.recipients:
            return entry
    return result.recipients[0] if result.recipients else None


def _measure() -> tuple[dict[str, Tally], list[str], float]:
    tallies = {name: Tally() for name in MINIMUM}
    wrong: list[str] = []
    slowest = 0.0
    for row in _rows():
        raw = (CORPUS / row.file).read_bytes()
        started = time.perf_counter()
        result = classify(raw)
        slowest = max(slowest, time.perf_counter() - started)
        hard = [entry.email for entry in result.recipients if entry.hard]
        if hard and (row.kind not in FAILURE_KINDS or row.hard is False):
            wrong.append(f"{row.file}: {hard}")
        if row.kind not in FAILURE_KINDS:
            continue
        entry = _about(result, row)
        if row.recipients:
            found = frozenset(e.email.casefold() for e in result.recipients)
            tallies["recipient"].add(found == row.recipients, f"{row.file}: {sorted(found)}")
        if row.status:
            ours = entry.status if entry else ""
            tallies["class"].add(ours[:1] == row.status[:1], f"{row.file}: {ours!r}")
        if row.reason:
            ours = str(entry.reason) if entry else ""
            tallies["reason"].add(ours == row.expected("reason", row.reason), f"{row.file}: {ours}")
        if row.hard is not None:
            address_level = any(
                e.action is Action.FAILED and e.reason in ADDRESS_REASONS for e in result.recipients
            )
            tallies["suppress"].add(address_level is row.hard, f"{row.file}: {address_level}")
    return tallies, wrong, slowest


@pytest.fixture(scope="module")
def measured() -> tuple[dict[str, Tally], list[str], float]:
    tallies, wrong, slowest = _measure()
    print("\nbounce corpus agreement:")
    for name, tally in tallies.items():
        print(f"  {name:9} {tally.agreed}/{tally.counted} = {tally.share:.1%}")
    print(f"  wrong suppressions: {len(wrong)}; slowest message {slowest * 1000:.1f} ms")
    return tallies, wrong, slowest


@pytest.mark.parametrize("name", list(MINIMUM))
def test_agreement(measured: tuple[dict[str, Tally], list[str], float], name: str) -> None:
    tally = measured[0][name]
    assert tally.counted > 100
    assert tally.share >= MINIMUM[name], "\n".join(tally.misses)


def test_no_valid_address_is_suppressed(
    measured: tuple[dict[str, Tally], list[str], float],
) -> None:
    assert measured[1] == []


def test_every_disagreement_names_a_row_and_a_reason() -> None:
    rows = {(row.file, name) for row in _rows() for name in ("reason", "recipient")}
    for key, (value, why) in DISAGREEMENTS.items():
        assert key in rows and value and why, key
