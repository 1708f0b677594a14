"""Run the projector service and kill the process right after its Nth commit, before the
ack (used by test_projector.py as a subprocess). Arguments: database URL, NATS URL, N."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys

from pigeon_projector.service import ProjectorService
from pigeon_projector.settings import ProjectorSettings

CRASH_EXIT_CODE = 17


async def main(database_url: str, nats_url: str, crash_after: int) -> None:
    commits = 0

    async def after_commit(_seq: int) -> None:
        nonlocal commits
        commits += 1
        if commits >= crash_after:
            os._exit(CRASH_EXIT_CODE)

    settings = ProjectorSettings(
        database_url=database_url,
        nats_url=nats_url,
        secret_key=secrets.token_urlsafe(40),
        projector_batch_size=5,
    )
    await ProjectorService(settings, after_commit=after_commit).run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
