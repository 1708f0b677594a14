"""SMTP and IMAP connections of one worker, one of each per mailbox, reopened when the
mailbox's endpoint changes."""

from __future__ import annotations

import ssl
import uuid

from nats.js import JetStreamContext

from pigeon_common.render import RenderedMessage
from pigeon_common.smtp import SmtpSession
from pigeon_common.smtp_outcomes import Outcome
from pigeon_sender.campaign import SendingCampaign
from pigeon_sender.mailcopy import SentCopier


class SmtpMessenger:
    """Pushes a rendered message to the campaign's SMTP server (SmtpConnectError when
    the server cannot be reached or refuses the login)."""

    def __init__(self) -> None:
        self._sessions: dict[uuid.UUID, SmtpSession] = {}

    async def send(self, campaign: SendingCampaign, message: RenderedMessage) -> Outcome:
        session = self._sessions.get(campaign.mailbox_id)
        if session is None or session.endpoint != campaign.smtp:
            if session is not None:
                await session.close()
            session = self._sessions[campaign.mailbox_id] = SmtpSession(campaign.smtp)
        return await session.send(message.envelope_from, message.envelope_to, message.raw)

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()


class Copiers:
    """The Sent copier of each mailbox."""

    def __init__(self, js: JetStreamContext, tls_context: ssl.SSLContext | None) -> None:
        self._js = js
        self._tls_context = tls_context
        self._copiers: dict[uuid.UUID, SentCopier] = {}

    async def for_campaign(self, campaign: SendingCampaign) -> SentCopier:
        copier = self._copiers.get(campaign.mailbox_id)
        if copier is None or copier.endpoint != campaign.imap:
            if copier is not None:
                await copier.close()
            copier = self._copiers[campaign.mailbox_id] = SentCopier(
                campaign.mailbox_id,
                campaign.imap,
                campaign.sent_folder,
                campaign.append_to_sent,
                self._js,
                self._tls_context,
            )
        return copier

    async def close(self) -> None:
        for copier in self._copiers.values():
            await copier.close()
