"""The pure domain: campaign lifecycle, mailbox and suppression rules, access policy.

Nothing here does I/O or imports nats, asyncpg, aiosmtplib or fastapi (a unit test
checks it). Every surface (REST, admin pages, CLI through REST, MCP through REST, the
senders' scheduler) reaches a rule only through these modules.
"""
