"""Snoozes: the clock's pass opening again the conversations whose snooze is over."""

from __future__ import annotations

import logging

import dramatiq

from app import assignment, messages
from app.db import utcnow
from workers.broker import MAINTENANCE

log = logging.getLogger(__name__)


@dramatiq.actor(queue_name=MAINTENANCE, max_retries=3)
def wake_snoozed() -> None:
    """Open every conversation snoozed until now or earlier; safe to run twice."""
    notices = assignment.wake_snoozed(utcnow())
    messages.publish(notices)
    if notices:
        log.info("Opened %d snoozed conversation(s) again", len(notices))
