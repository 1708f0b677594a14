"""Real bounces from flufl.bounce's sdist: the classifier finds what flufl.bounce's tests expect.

The expected addresses come from the sdist's own table (`pigeon_testing.flufl_samples`).
RFC 3464 samples go through our report parser, the rest through flufl.bounce's detectors,
so this checks both against the same expectations. flufl's table marks each sample
permanent or temporary (its "warning" samples, e.g. simple_03.txt); a temporary one must be
a DEFERRAL with delayed recipients, a permanent one a BOUNCE with failed recipients.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pigeon_imap_sync.classify import classify
from pigeon_imap_sync.inbound import Action, InboundKind
from pigeon_testing import flufl_samples
from pigeon_testing.flufl_samples import BounceSample
from tests.unit.imap_sync.mails import assert_single_lines


def _emails(sample: BounceSample, action: Action) -> set[str]:
    result = classify(sample.raw)
    return {entry.email.casefold() for entry in result.recipients if entry.action is action}


def test_sample(flufl_bounce_sample: BounceSample) -> None:
    sample = flufl_bounce_sample
    result = classify(sample.raw)

    assert result.kind is not InboundKind.UNPARSED, result.reason
    assert_single_lines(result)
    if not sample.expected:
        # flufl expects nothing here (no address is detectable, or the row is about one
        # detector that must keep quiet): classifying it without an error is the test.
        return
    assert {entry.email.casefold() for entry in result.recipients} == sample.expected
    assert _emails(sample, Action.FAILED) == sample.permanent
    assert _emails(sample, Action.DELAYED) == sample.temporary
    assert result.kind is (InboundKind.BOUNCE if sample.permanent else InboundKind.DEFERRAL)


def test_the_table_was_read(flufl_bounce_samples: tuple[BounceSample, ...]) -> None:
    with_addresses = [sample for sample in flufl_bounce_samples if sample.expected]
    assert len(flufl_bounce_samples) > 100
    assert len(with_addresses) > 100
    assert any(sample.temporary for sample in with_addresses)


def test_hard_and_soft_on_real_bounces(flufl_bounce_samples: tuple[BounceSample, ...]) -> None:
    by_name = {sample.filename: sample for sample in flufl_bounce_samples}
    expected = {
        # RFC 3464, Status 5.1.1
        ("dsn_11.txt", "joem@example.com"): True,
        # Status 5.0.0, "550 unknown user" in the Diagnostic-Code
        ("dsn_16.txt", "userx@example.com"): True,
        # Action failed with 4.4.7: the route was given up, not the address
        ("dsn_02.txt", "zzzzz@example.uk"): False,
        # Status 5.0.0 and Gmail's "550 5.7.1 ... likely unsolicited mail"
        ("simple_42.txt", "david...@gmail.com"): False,
        # qmail: "Sorry, no mailbox here by that name. (#5.1.1)"
        ("qmail_03.txt", "userx@example.jp"): True,
        # Exim: "553 5.1.1 unknown or illegal user"
        ("exim_01.txt", "userx@its.example.nl"): True,
        # "This person's account is exceeding their quota."
        ("newmailru_01.txt", "zzzzz@newmail.ru"): False,
        # "User's mailbox is full"
        ("simple_07.txt", "userx@example.net"): False,
        # Sendmail: "554 Too many hops" for the alias, nothing said for its expansion
        ("sendmail_01.txt", "zzzzz@nfg.nl"): False,
        # nothing said for its expansion: an unexplained failure never suppresses
        ("sendmail_01.txt", "zzzzz@shaft.coal.nl"): False,
    }

    found = {}
    for name, email in expected:
        recipients = classify(by_name[name].raw).recipients
        found[name, email] = next(entry.hard for entry in recipients if entry.email == email)

    assert found == expected


def test_missing_sample_data_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = tmp_path / flufl_samples.CACHE_DIR / flufl_samples.SDIST_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the archive")  # a bad cache is fetched again...
    monkeypatch.setattr(flufl_samples, "SDIST_URL", "http://127.0.0.1:9/nothing.tar.gz")

    with pytest.raises(flufl_samples.SampleDataError, match="download failed"):
        flufl_samples.load_samples(tmp_path)  # ...and a failed fetch is an error, no skip
