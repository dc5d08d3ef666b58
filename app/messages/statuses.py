"""Status ordering: an outbound message's status only moves forward.

PENDING → SENT → DELIVERED → READ, and FAILED ends an attempt not yet read.
:func:`advance` is the one update that moves messages: it matches only those
still in an earlier status, so a late or repeated status changes nothing.
"""

from __future__ import annotations

import datetime

from peewee import Case, fn

from app.models import Message, MessageStatus
from app.platforms.errors import ErrorCode

#: The timestamp column each status sets.
STATUS_COLUMNS = {
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.FAILED: "failed_at",
}


def advance(*where, status: str, at: datetime.datetime, error_code=None, error_message=None):
    """Move the messages matching ``where`` forward to ``status``; returns those it moved."""
    changes = _status_changes(status, at)
    if status == MessageStatus.FAILED:
        changes[Message.error_code] = error_code or ErrorCode.REJECTED
        changes[Message.error_message] = error_message or "The platform could not deliver it."
    query = (
        Message.update(changes)
        .where(*where, Message.status.in_(_earlier(status)))
        .returning(Message)
    )
    return list(query.execute())


def _earlier(status: str) -> list[str]:
    """The statuses an outbound message may hold for ``status`` to move it forward."""
    if status == MessageStatus.FAILED:
        return [MessageStatus.PENDING, MessageStatus.SENT, MessageStatus.DELIVERED]
    rank = MessageStatus.ORDER[status]
    return [name for name, order in MessageStatus.ORDER.items() if order < rank]


def _status_changes(status: str, at: datetime.datetime) -> dict:
    """Set ``status`` and its timestamp, and fill the earlier ones it implies.

    A status is never stamped earlier than the one before it: ``sent_at`` comes
    from SNORQ's clock in milliseconds, the platform's receipts in whole seconds.
    """
    changes = {Message.status: status}
    implied = [MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ]
    if status in implied:
        stamp, before = at, []
        for earlier in implied[: implied.index(status) + 1]:
            column = getattr(Message, STATUS_COLUMNS[earlier])
            for previous in before:
                stamp = Case(None, [(previous > stamp, previous)], stamp)
            changes[column] = fn.COALESCE(column, stamp)
            before.append(column)
    else:
        changes[getattr(Message, STATUS_COLUMNS[status])] = at
    return changes
