"""A mailbox's bounce-folder sync: its state, and "sync now" (asks imap-sync over NATS)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from pigeon_api.commands.loading import mailbox_row
from pigeon_api.commands.remote import RemoteError
from pigeon_api.context import ApiContext
from pigeon_common.connect_failure import FailureKind
from pigeon_common.domain.access import Action, Actor
from pigeon_common.domain.errors import Conflict, Invalid
from pigeon_common.host_policy import HostDeniedError
from pigeon_common.jetstream import IMAP_SYNC_NOW_SUBJECT

SYNC_NOW_TIMEOUT_SEC = 120.0


async def sync_now(ctx: ApiContext, conn: Any, actor: Actor, mailbox_id: uuid.UUID) -> Any:
    """Read the bounce folder now; the answer is imap-sync's report (a dict)."""
    row = await mailbox_row(conn, actor, mailbox_id, Action.MAILBOX_SYNC)
    if not row["bounce_folder"]:
        raise Conflict("no_bounce_folder", "the mailbox has no bounce_folder to sync")
    # Refused here, without DNS, whether or not an imap-sync runs (it checks again after
    # resolving the name).
    try:
        policy = ctx.settings.mailbox_host_policy()
        policy.check_name(row["imap_host"])
        policy.check_literal(row["imap_host"])
    except HostDeniedError as exc:
        raise Invalid(
            "mailbox_host_denied", f"imap.host: {exc.reason}", field="imap.host"
        ) from None
    nc = ctx.require().nc
    try:
        reply = await nc.request(
            IMAP_SYNC_NOW_SUBJECT,
            json.dumps({"mailbox_id": str(mailbox_id)}).encode(),
            timeout=SYNC_NOW_TIMEOUT_SEC,
        )
    except NoRespondersError:
        raise RemoteError("imap_sync_unavailable", "no imap-sync service is running", 503) from None
    except NatsTimeoutError:
        raise RemoteError("imap_sync_timeout", "the sync did not finish in time", 504) from None
    answer = json.loads(reply.data)
    if "refused" in answer:
        raise Conflict("sync_refused", str(answer["refused"]))
    if "failed" in answer:
        raise RemoteError("sync_failed", f"imap-sync: {answer['failed']}")
    if answer.get("error"):
        # imap-sync worded it: a connect failure names its kind and never echoes bytes
        # that are not IMAP (pigeon_common.connect_failure).
        kind = str(answer.get("error_kind") or "error")
        if kind == FailureKind.DENIED:
            raise Invalid("mailbox_host_denied", str(answer["error"]))
        raise RemoteError(f"imap_{kind}", str(answer["error"]))
    return answer
