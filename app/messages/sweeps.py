"""What the clock's sweeps change: nothing waits forever.

A send or an attachment fetch whose job was lost is resumed after a grace
period, and one pending far too long is failed (``workers/outbound.py`` and
``workers/media.py`` run the sweeps).
"""

from __future__ import annotations

import datetime

from app.db import database, utcnow
from app.messages.media import attachment_notice
from app.messages.notices import Notice, status_notices_for
from app.models import Attachment, AttachmentStatus, Direction, Message, MessageStatus
from app.platforms.errors import ErrorCode

# -- sends ---------------------------------------------------------------------------


def fail_unsettled(now: datetime.datetime, reason: str) -> list[Notice]:
    """Fail every unconfirmed send whose wait for a webhook is over."""
    with database.atomic():
        rows = (
            Message.update(
                status=MessageStatus.FAILED,
                failed_at=now,
                error_message=reason,
                send_lease_until=None,
            )
            .where(
                Message.status == MessageStatus.PENDING,
                Message.error_code == ErrorCode.SEND_UNCONFIRMED,
                Message.send_lease_until < now,
            )
            .returning(Message)
            .execute()
        )
        return status_notices_for(rows)


def _idle(now: datetime.datetime):
    """PENDING, not unconfirmed, no claim held, and not deferred past ``now``."""
    return (
        (Message.status == MessageStatus.PENDING)
        & (Message.direction == Direction.OUTBOUND)
        & (Message.error_code.is_null() | (Message.error_code != ErrorCode.SEND_UNCONFIRMED))
        & (Message.send_lease_until.is_null() | (Message.send_lease_until <= now))
        & (Message.send_after.is_null() | (Message.send_after <= now))
    )


def fail_abandoned(
    now: datetime.datetime, created_before: datetime.datetime, code: int, reason: str
) -> list[Notice]:
    """Fail idle sends created before ``created_before``: pending far too long."""
    with database.atomic():
        rows = (
            Message.update(
                status=MessageStatus.FAILED,
                failed_at=now,
                error_code=int(code),
                error_message=reason,
                send_lease_until=None,
            )
            .where(_idle(now), Message.created_at < created_before)
            .returning(Message)
            .execute()
        )
        return status_notices_for(rows)


def resume_stuck(now: datetime.datetime, grace: datetime.timedelta) -> list[int]:
    """The ids of sends idle for ``grace`` (their job was lost), marked as resumed now.

    A message counts as idle from its creation, its deferral's end or its expired
    claim; marking it means the next sweep waits another ``grace`` before resuming
    it again, so a queue that is merely long is not flooded with copies.
    """
    since = now - grace
    with database.atomic():
        rows = (
            Message.update(send_after=now)
            .where(_idle(since), Message.created_at <= since)
            .returning(Message.id)
            .tuples()
            .execute()
        )
        return [row[0] for row in rows]


# -- attachments ---------------------------------------------------------------------


def resume_stuck_attachments(now: datetime.datetime, grace: datetime.timedelta) -> list[int]:
    """The ids of attachments PENDING and untouched for ``grace`` (their fetch job was lost).

    Each is marked as touched now, so the next sweep waits another ``grace`` for it.
    """
    with database.atomic():
        rows = (
            Attachment.update(updated_at=now)
            .where(
                Attachment.status == AttachmentStatus.PENDING,
                Attachment.updated_at <= now - grace,
            )
            .returning(Attachment.id)
            .tuples()
            .execute()
        )
        return [row[0] for row in rows]


def fail_abandoned_attachments(created_before: datetime.datetime, reason: str) -> list[Notice]:
    """Fail the attachments still PENDING that arrived before ``created_before``."""
    with database.atomic():
        rows = list(
            Attachment.update(status=AttachmentStatus.FAILED, error=reason, updated_at=utcnow())
            .where(
                Attachment.status == AttachmentStatus.PENDING,
                Attachment.created_at < created_before,
            )
            .returning(Attachment)
            .execute()
        )
        return [attachment_notice(attachment) for attachment in rows]
