"""Retention: the clock's regular pass deleting what is kept no longer (``app/retention.py``)."""

from __future__ import annotations

import logging

import dramatiq

from app import retention
from app.config import get_settings
from app.db import utcnow
from workers.broker import MAINTENANCE

log = logging.getLogger(__name__)


@dramatiq.actor(queue_name=MAINTENANCE, max_retries=3, time_limit=3_600_000)
def prune_stored() -> None:
    """Delete processed webhook bodies and audit entries past their retention.

    Safe to run twice, or beside another copy: each batch deletes what is still there.
    """
    settings = get_settings()
    now = utcnow()
    webhooks = retention.prune(retention.expired_webhooks, now, settings.webhook_retention_days)
    entries = retention.prune(retention.expired_audit, now, settings.audit_retention_days)
    if webhooks or entries:
        log.info(
            "Deleted %d stored webhook(s) and %d audit entries past retention", webhooks, entries
        )
