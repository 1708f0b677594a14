"""Pure rules of the sender: rate windows, claim records, retry delays."""

from __future__ import annotations

import uuid

from pigeon_common.smtp_outcomes import Outcome, Verdict
from pigeon_sender.claims import claim_key
from pigeon_sender.ratelimit import Limits, window_start
from pigeon_sender.worker import outcome_record, retry_delay, suppressed_record


def test_windows_only_for_set_limits() -> None:
    assert Limits(None, None, None).by_window() == []
    assert Limits(10, None, 1000).by_window() == [("s", 1, 10), ("d", 86400, 1000)]


def test_window_start_aligns_to_the_span() -> None:
    assert window_start(7201.5, 3600) == 7200
    assert window_start(86399.0, 86400) == 0
    assert window_start(12.9, 1) == 12


def test_outcome_records_keep_what_the_event_needs() -> None:
    sent = outcome_record("a@example.com", Outcome(Verdict.SENT, 250, "250 ok"), "m@x")
    assert sent == {
        "status": "sent",
        "email": "a@example.com",
        "message_id": "m@x",
        "reply": "250 ok",
    }
    failed = outcome_record("a@example.com", Outcome(Verdict.FAILED, 550, "5.1.1", True), "m@x")
    assert failed["status"] == "failed" and failed["hard_bounce"] is True and failed["code"] == 550
    unknown = outcome_record("a@example.com", Outcome(Verdict.UNKNOWN, 0, "lost"), "m@x")
    assert unknown == {"status": "unknown", "email": "a@example.com", "reason": "lost"}
    assert suppressed_record("a@example.com", "why")["status"] == "suppressed"


def test_claim_keys_are_valid_kv_keys() -> None:
    key = claim_key(uuid.uuid4(), uuid.uuid4())
    assert all(c.isalnum() or c in "-." for c in key)


def test_retry_delay_grows_and_caps() -> None:
    delays = [retry_delay(n) for n in range(1, 10)]
    assert delays == sorted(delays)
    assert delays[-1] == delays[-2]


def test_a_new_mailbox_password_invalidates_the_compiled_campaign() -> None:
    from pigeon_sender.campaign import compiled_version

    row = {"updated_at": 1, "mailbox_updated_at": 2, "secrets_updated_at": 3}
    assert compiled_version(row) != compiled_version({**row, "secrets_updated_at": 4})
    assert compiled_version(row) != compiled_version({**row, "mailbox_updated_at": 5})


def test_endpoints_never_show_their_password() -> None:
    from pigeon_common.smtp import SmtpEndpoint
    from pigeon_sender.campaign import ImapEndpoint

    smtp = SmtpEndpoint("smtp.example.com", 587, "starttls", "ann", "s3cret-pw")
    imap = ImapEndpoint("imap.example.com", 993, "tls", "ann", "s3cret-pw")
    assert "s3cret-pw" not in repr(smtp) + repr(imap)
