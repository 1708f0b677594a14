"""What the sender reads from the read models: a chunk's campaign and recipients, and
whether the campaign is still sending. Campaigns are compiled once per process."""

from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from pigeon_common.domain.status import CampaignStatus
from pigeon_common.host_policy import ALLOW_ALL, HostPolicy
from pigeon_common.queries import Queries
from pigeon_common.render import TrackingSigner
from pigeon_common.secrets_box import SecretBox
from pigeon_common.validation import address_key
from pigeon_sender.campaign import SendingCampaign, compiled_version, sending_campaign

SQL = Queries.from_package("pigeon_sender", "queries.sql")


@dataclass(frozen=True, slots=True)
class ChunkRows:
    """The chunk's recipients in the job's order, and which of them are suppressed."""

    recipients: list[Any]
    suppressed: frozenset[uuid.UUID]


class CampaignStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        signer: TrackingSigner,
        public_base_url: str | None,
        tls_context: ssl.SSLContext | None = None,
        host_policy: HostPolicy = ALLOW_ALL,
    ) -> None:
        self.pool = pool
        self._host_policy = host_policy
        self._box = box
        self._signer = signer
        self._public_base_url = public_base_url
        self._tls_context = tls_context
        # Shared by the workers of a process (keyed by id, checked against the versions).
        self._compiled: dict[uuid.UUID, SendingCampaign] = {}

    async def campaign(self, campaign_id: uuid.UUID) -> SendingCampaign | None:
        """The campaign ready to send (NotSendableError / TemplateError if it never can)."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(SQL.campaign_for_send, campaign_id)
        if row is None:
            return None
        cached = self._compiled.get(campaign_id)
        if cached is not None and cached.version == compiled_version(row):
            return cached
        campaign = sending_campaign(
            row,
            self._box,
            self._signer,
            self._public_base_url,
            self._tls_context,
            self._host_policy,
        )
        self._compiled[campaign_id] = campaign
        return campaign

    async def chunk(self, campaign: SendingCampaign, recipient_ids: list[uuid.UUID]) -> ChunkRows:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(SQL.recipients_by_ids, campaign.id, recipient_ids)
            keys = {r["id"]: address_key(r["email"]) for r in rows}
            suppressed_keys = {
                r["email_key"]
                for r in await conn.fetch(
                    SQL.suppressed_keys, list(keys.values()), campaign.mailbox_id
                )
            }
        order = {rid: i for i, rid in enumerate(recipient_ids)}
        return ChunkRows(
            recipients=sorted(rows, key=lambda r: order[r["id"]]),
            suppressed=frozenset(rid for rid, key in keys.items() if key in suppressed_keys),
        )

    async def still_sending(self, campaign_id: uuid.UUID) -> bool:
        async with self.pool.acquire() as conn:
            status = await conn.fetchval(SQL.campaign_status_only, campaign_id)
        return bool(status == CampaignStatus.SENDING)
