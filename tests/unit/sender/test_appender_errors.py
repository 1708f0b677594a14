"""The sender's APPEND error (pigeon_sender.appender), without sockets."""

from __future__ import annotations

from pigeon_common.imap_protocol import ImapError
from pigeon_sender.appender import ImapAppendError


def test_refused_append_says_what_is_not_stored() -> None:
    refused = ImapAppendError("TRYCREATE", "no Sent", failed=range(3))
    assert refused.failed == (0, 1, 2) and refused.command == "APPEND"
    assert isinstance(refused, ImapError) and not refused.temporary
    assert ImapAppendError("OVERQUOTA", "full", failed=[0]).temporary
