"""Finishing a rotation of PIGEON_SECRET_KEY: every stored mailbox password encrypted
again with the current key, so the previous keys can be dropped.

Mailbox passwords live only in the API-owned table `mailbox_secrets` (DESIGN: never in
events, not even as ciphertext), so re-encrypting them is a rewrite of that table, not an
event: a rebuild of the read models never touches it. Each row is replaced only if it
still holds what was read (compare-and-set), so a password changed through the API
meanwhile is never overwritten with the old one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pigeon_api.context import SQL
from pigeon_common.secrets_box import SecretBox, SecretBoxError

PAGE_SIZE = 500
MAX_PASSES = 3  # a row changed under a pass is looked at again by the next one
_FIRST_ID = uuid.UUID(int=0)


@dataclass(frozen=True)
class Unreadable:
    """A mailbox whose stored password no listed key decrypts."""

    mailbox_id: uuid.UUID
    name: str | None


@dataclass
class Reencryption:
    """What a run found and did, counted in mailboxes."""

    mailboxes: int = 0  # with a row of stored passwords
    reencrypted: int = 0  # moved from an older key to the current one (or, not writing: to be)
    changed: int = 0  # changed by someone else during the last pass: not yet checked
    unreadable: list[Unreadable] = field(default_factory=list)


def rekeyed(box: SecretBox, secret: str | None) -> str | None:
    """`secret` under the current key; the same value when it already is (or is None).
    Raises SecretBoxError when no key decrypts it."""
    if secret is None or box.is_current(secret):
        return secret
    return box.reencrypt(secret)


async def reencrypt_mailbox_secrets(
    conn: Any, box: SecretBox, *, write: bool = True
) -> Reencryption:
    """Re-encrypt every stored mailbox password with `box`'s current key (`write=False`:
    only count what would be re-encrypted)."""
    done = 0
    for _ in range(MAX_PASSES):
        result = await _one_pass(conn, box, write)
        done += result.reencrypted
        if result.changed == 0 or not write:
            break
    result.reencrypted = done
    return result


async def _one_pass(conn: Any, box: SecretBox, write: bool) -> Reencryption:
    result = Reencryption()
    after = _FIRST_ID
    while rows := await conn.fetch(SQL.mailbox_secrets_page, after, PAGE_SIZE):
        after = rows[-1]["mailbox_id"]
        result.mailboxes += len(rows)
        for row in rows:
            smtp, imap = row["smtp_password"], row["imap_password"]
            try:
                new_smtp, new_imap = rekeyed(box, smtp), rekeyed(box, imap)
            except SecretBoxError:
                result.unreadable.append(Unreadable(row["mailbox_id"], row["name"]))
                continue
            if (new_smtp, new_imap) == (smtp, imap):
                continue
            if not write or await replace_if_unchanged(
                conn, row["mailbox_id"], (smtp, imap), (new_smtp, new_imap)
            ):
                result.reencrypted += 1
            else:
                result.changed += 1
    return result


async def replace_if_unchanged(
    conn: Any,
    mailbox_id: uuid.UUID,
    old: tuple[str | None, str | None],
    new: tuple[str | None, str | None],
) -> bool:
    """Store `new` for the mailbox only if its row still holds `old`; True if it did."""
    status = await conn.execute(SQL.reencrypt_mailbox_secrets, mailbox_id, *old, *new)
    return bool(status == "UPDATE 1")
