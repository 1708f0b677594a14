"""Pure rules of the sender: rate windows, claim records, retry delays."""

from __future__ import annotations

import uuid

from pigeon_sender.outcomes import retry_delay
from pigeon_sender.ratelimit import Limits, window_start
from pigeon_sender.records import claim_key, copy_key


def test_windows_only_for_set_limits() -> None:
    assert Limits(None, None, None).by_window() == []
    assert Limits(10, None, 1000).by_window() == [("s", 1, 10), ("d", 86400, 1000)]


def test_window_start_aligns_to_the_span() -> None:
    assert window_start(7201.5, 3600) == 7200
    assert window_start(86399.0, 86400) == 0
    assert window_start(12.9, 1) == 12


def test_claim_and_copy_keys_are_valid_kv_keys() -> None:
    campaign, recipient = uuid.uuid4(), uuid.uuid4()
    for key in (claim_key(campaign, recipient), copy_key(campaign, recipient, "a.b.c@x.org")):
        assert all(c.isalnum() or c in "-." for c in key)
    assert copy_key(campaign, recipient, "one@x") != copy_key(campaign, recipient, "two@x")


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
