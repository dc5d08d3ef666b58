"""Logging for every SNORQ process, with job arguments kept out of the log.

Dramatiq logs a failing message as ``actor(arg, …)``; for SNORQ those arguments
are webhook bodies, and a body is customer text that must never reach a log. A
record factory swaps any queued message in a record's arguments for its actor
name and id before any handler sees it.
"""

from __future__ import annotations

import logging

from dramatiq.broker import MessageProxy
from dramatiq.message import Message

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _QueuedMessageRef:
    """What a log line shows of a queued message: its actor and id, no arguments."""

    def __init__(self, message: Message | MessageProxy) -> None:
        self.text = f"{message.actor_name}#{message.message_id}"

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def _redact(value):
    if isinstance(value, (Message, MessageProxy)):
        return _QueuedMessageRef(value)
    return value


def _redacting_factory(make_record):
    def factory(*args, **kwargs):
        record = make_record(*args, **kwargs)
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redact(arg) for arg in record.args)
        return record

    factory.snorq_redacting = True
    return factory


def install_redaction() -> None:
    """Make every log record redact queued messages (idempotent)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "snorq_redacting", False):
        logging.setLogRecordFactory(_redacting_factory(current))


def configure_logging(level: int = logging.INFO) -> None:
    """Plain timestamped lines on stderr, for processes that own their logging."""
    install_redaction()
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
