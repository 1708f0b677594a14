"""Logging set-up shared by every service: one line per record, no secrets."""

from __future__ import annotations

import logging


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # nats-py logs every reconnect attempt with a traceback; one line is enough.
    logging.getLogger("nats.aio.client").setLevel(logging.CRITICAL)
