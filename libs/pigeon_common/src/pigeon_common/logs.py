"""Logging set-up shared by every service: one line per record, no secrets."""

from __future__ import annotations

import logging

# Libraries that log a full traceback for a failure they retry themselves.
RETRYING_LIBRARY_LOGGERS = ("asyncpg.pool", "nats.aio.client", "uvicorn.error")


class OneLineFilter(logging.Filter):
    """Turns a record's traceback into `: <exception>` on the same line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!r}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in RETRYING_LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(OneLineFilter())
