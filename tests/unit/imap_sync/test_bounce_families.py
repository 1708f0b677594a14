"""Bounces and provider notifications of the families the shared corpus lacks, built from
each server's or provider's own template or documented format (tests/data/bounce-families,
see its LICENSES.md): each one gives exactly the kind, recipients, status, reason and
suppress decision of its rows in `expected.csv` (one row per recipient).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from pigeon_imap_sync.classify import classify
from pigeon_imap_sync.inbound import InboundKind
from tests.unit.imap_sync.mails import assert_single_lines

FAMILIES = Path(__file__).parents[2] / "data" / "bounce-families"


def _expected() -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (FAMILIES / "expected.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[row["file"]].append(row)
    return dict(rows)


EXPECTED = _expected()


def test_every_sample_has_rows() -> None:
    samples = {path.name for path in FAMILIES.glob("*.eml")}
    assert samples == set(EXPECTED)
    assert len({rows[0]["family"] for rows in EXPECTED.values()}) >= 25


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str) -> None:
    rows = EXPECTED[name]
    result = classify((FAMILIES / name).read_bytes())

    assert_single_lines(result)
    assert result.kind == rows[0]["kind"], result.reason
    expected = {row["recipient"]: row for row in rows if row["recipient"]}
    found = {entry.email: entry for entry in result.recipients}
    assert set(found) == set(expected)
    for email, row in expected.items():
        entry = found[email]
        assert (entry.status, str(entry.hard).lower(), str(entry.reason)) == (
            row["status"],
            row["hard"],
            row["reason"],
        ), entry.evidence


@pytest.mark.parametrize(
    "name",
    sorted(name for name, rows in EXPECTED.items() if rows[0]["kind"] == InboundKind.OTHER),
)
def test_a_delivery_notification_is_no_bounce(name: str) -> None:
    result = classify((FAMILIES / name).read_bytes())
    assert result.kind is InboundKind.OTHER
    assert result.recipients == ()
    assert "notification without failures" in result.reason


def test_an_office365_report_is_never_an_auto_reply() -> None:
    # It carries Auto-Submitted and X-Auto-Response-Suppress, like an out-of-office.
    raw = (FAMILIES / "office365-ndr-no-report.eml").read_bytes()
    assert b"Auto-Submitted: auto-replied" in raw
    assert classify(raw).kind is InboundKind.BOUNCE


def test_a_message_id_is_never_a_recipient() -> None:
    raw = (FAMILIES / "message-id-not-recipient.eml").read_bytes()
    assert b"Final-Recipient: rfc822; <c1.r13.n0nce@mail.sender.example>" in raw
    emails = [entry.email for entry in classify(raw).recipients]
    assert emails == ["kijitora@example.org"]


def test_a_provider_json_value_is_never_a_recipient() -> None:
    for name in EXPECTED:
        for entry in classify((FAMILIES / name).read_bytes()).recipients:
            assert not set(entry.email) & set("{}[]\"':,<> "), (name, entry.email)
