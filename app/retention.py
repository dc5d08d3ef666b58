"""Retention: stored webhook bodies and audit entries are deleted once old enough.

A webhook body is kept ``SNORQ_WEBHOOK_RETENTION_DAYS`` (default 30) after it
arrived, for audit and replay, once it was processed. A body that failed, or was
never processed, is kept until it is replayed (and so processed) or discarded on
purpose (:func:`discard_webhooks`). Audit entries are kept
``SNORQ_AUDIT_RETENTION_DAYS`` (default 365). 0 keeps them forever.

Rows go in batches of :data:`BATCH`, a few short statements each, so a prune never
holds a lock ingest waits for (on SQLite, the one writer lock) for long.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

from peewee import ModelSelect

from app.models import AuditLog, WebhookEvent, WebhookStatus

#: Rows deleted per statement.
BATCH = 1000


def expired_webhooks(before: datetime.datetime) -> ModelSelect:
    """The processed webhook bodies received before ``before``, oldest first."""
    return (
        WebhookEvent.select(WebhookEvent.id)
        .where(
            WebhookEvent.status == WebhookStatus.PROCESSED,
            WebhookEvent.received_at < before,
        )
        .order_by(WebhookEvent.received_at)
    )


def expired_audit(before: datetime.datetime) -> ModelSelect:
    """The audit entries written before ``before``, oldest first."""
    return (
        AuditLog.select(AuditLog.id)
        .where(AuditLog.created_at < before)
        .order_by(AuditLog.created_at)
    )


def prune(
    expired: Callable[[datetime.datetime], ModelSelect], now: datetime.datetime, days: int
) -> int:
    """Delete the rows ``expired`` selects as older than ``days`` (0: none), in batches.

    Parameters:
      expired: :func:`expired_webhooks` or :func:`expired_audit`.

    Returns:
      How many were deleted.
    """
    if days <= 0:
        return 0
    return delete_in_batches(expired(now - datetime.timedelta(days=days)))


def delete_in_batches(expired: ModelSelect) -> int:
    """Delete the rows ``expired`` selects (by id), :data:`BATCH` at a time.

    Each batch is two short statements, both read through an index: the ids, then
    the delete by id.

    Returns:
      How many were deleted.
    """
    model = expired.model
    deleted = 0
    while True:
        ids = [row[0] for row in expired.limit(BATCH).tuples()]
        if ids:
            deleted += model.delete().where(model.id.in_(ids)).execute()
        if len(ids) < BATCH:
            return deleted


def discard_webhooks(ids: Iterable[int]) -> int:
    """Delete stored webhook bodies on purpose: they will never be replayed.

    This is how a body that failed (or was never processed) leaves the store.

    Returns:
      How many were deleted (an unknown id is skipped).
    """
    ids = list(ids)
    deleted = 0
    for start in range(0, len(ids), BATCH):
        chosen = ids[start : start + BATCH]
        deleted += WebhookEvent.delete().where(WebhookEvent.id.in_(chosen)).execute()
    return deleted
