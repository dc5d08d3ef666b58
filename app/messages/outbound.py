"""Staff replies, from PENDING to SENT or FAILED, and the staff's other actions.

The outbound worker reads a free reply with its thread, claims it and marks it in
flight in one statement before calling the platform, and records how the call
ended; a send marked in flight is never claimed again (it may have been delivered).
"""

from __future__ import annotations

import datetime

from peewee import SQL

from app.db import database, utcnow
from app.messages import threads
from app.messages.external_ids import attach_external_id
from app.messages.notices import Notice, status_notices_for
from app.models import (
    Contact,
    ContentType,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    PlatformConnection,
)
from app.platforms.errors import ErrorCode
from app.serializers import message_json
from app.statements import Param, Statement, columns, instances


def create_outbound(
    conversation: Conversation,
    *,
    user_id: int | None,
    content: str,
    content_type: str = ContentType.TEXT,
    options: dict | None = None,
    idempotency_key: str | None = None,
) -> tuple[Message, list[Notice]]:
    """Store a staff reply as PENDING; the same idempotency key returns the first one.

    Returns:
      ``(message, notices)``; no notices when the key was used before.
    """
    with database.atomic():
        now = utcnow()
        message = Message(
            organization=conversation.organization_id,
            connection=conversation.connection_id,
            conversation=conversation.id,
            direction=Direction.OUTBOUND,
            content_type=content_type,
            content=content,
            payload=options,
            status=MessageStatus.PENDING,
            sent_by=user_id,
            idempotency_key=idempotency_key,
            created_at=now,
        )
        rows = (
            Message.insert(**message.__data__)
            .on_conflict_ignore()
            .returning(Message.id)
            .tuples()
            .execute()
        )
        row = next(iter(rows), None)
        if row is None:
            return Message.get(
                Message.conversation == conversation.id,
                Message.idempotency_key == idempotency_key,
            ), []
        message.id = row[0]
        summary, _ = threads.touch_conversation(conversation.id, content, now, False)
        summary["platform"] = conversation.connection.platform
        summary["connection_id"] = conversation.connection_id
        return message, [
            Notice(
                conversation.organization_id,
                "new:message",
                {"message": message_json(message), "conversation": summary},
            )
        ]


#: What a send is made from: its conversation, the customer and the account it goes from.
THREAD_MODELS = (Conversation, Contact, PlatformConnection)
Sendable = tuple[Message, Conversation, Contact, PlatformConnection]


def sendable(message_id: int) -> Sendable | None:
    """A PENDING reply no attempt holds, with its thread; None if it is not one.

    Only a read: the attempt checks the reply against its thread, then takes it with
    :func:`claim_send`, which looks again.

    Returns:
      The message and its thread (:data:`THREAD_MODELS`), read in one statement.
    """
    row = _SENDABLE.execute(id=message_id, **_free_values()).fetchone()
    return None if row is None else tuple(instances(row, Message, *THREAD_MODELS))


def _free(param: Param):
    """PENDING, no attempt's claim running, and not unconfirmed (it may have gone out)."""
    return (
        (Message.status == param("pending"))
        & (Message.send_lease_until.is_null() | (Message.send_lease_until < param("now")))
        & (Message.error_code.is_null() | (Message.error_code != param("unconfirmed")))
    )


def _free_values() -> dict:
    """The values :func:`_free` takes."""
    return {
        "now": utcnow(),
        "pending": MessageStatus.PENDING,
        "unconfirmed": int(ErrorCode.SEND_UNCONFIRMED),
    }


def _thread_select(*leading):
    """``leading`` columns, then those of a conversation, its customer and its account."""
    return (
        Conversation.select(*leading, *columns(*THREAD_MODELS))
        .join(Contact)
        .switch(Conversation)
        .join(PlatformConnection)
    )


_SENDABLE = Statement(
    lambda param: (
        _thread_select(*columns(Message))
        .join_from(Conversation, Message, on=(Message.conversation == Conversation.id))
        .where(Message.id == param("id"), _free(param))
    )
)


def claim_send(message_id: int, reason: str, *, settle_by: datetime.datetime) -> bool:
    """Take the send of a free reply and mark it in flight, in one statement.

    From here on the send may reach the platform, so it is marked unconfirmed (see
    :func:`record_unconfirmed`) until the call's outcome is recorded: a worker that
    dies mid-call leaves a send that is never claimed and sent again, and the sweep
    fails it after ``settle_by``. Two copies of a job never both send: only one
    update finds the reply free. An attempt that cannot call after all (no rate-limit
    token, Redis down) gives the send back with :func:`defer_send`. No live event:
    the message is PENDING before and after.

    Returns:
      Whether this attempt took the send.
    """
    cursor = _CLAIM.execute(id=message_id, reason=reason, settle_by=settle_by, **_free_values())
    return cursor.rowcount == 1


_CLAIM = Statement(
    lambda param: Message.update(
        error_code=param("unconfirmed"),
        error_message=param("reason"),
        send_lease_until=param("settle_by"),
        send_after=SQL("NULL"),
        send_attempts=Message.send_attempts + SQL("1"),
    ).where(Message.id == param("id"), _free(param))
)


def thread_of(conversation_id: int) -> tuple[Conversation, Contact, PlatformConnection] | None:
    """The conversation, its customer and the account it is on."""
    row = _THREAD.execute(id=conversation_id).fetchone()
    return None if row is None else tuple(instances(row, *THREAD_MODELS))


#: Every send and signal reads its thread, so the query is built once.
_THREAD = Statement(lambda param: _thread_select().where(Conversation.id == param("id")))


def defer_send(message_id: int, until: datetime.datetime) -> None:
    """Give up the claim until ``until`` (waiting for a rate-limit token or a retry).

    The sweep leaves the message alone until then. An attempt that never reached the
    platform leaves nothing unconfirmed behind, so its in-flight mark goes too.
    """
    _DEFER.execute(id=message_id, until=until, pending=MessageStatus.PENDING)


_DEFER = Statement(
    lambda param: Message.update(
        send_after=param("until"),
        send_lease_until=SQL("NULL"),
        error_code=SQL("NULL"),
        error_message=SQL("NULL"),
    ).where(Message.id == param("id"), Message.status == param("pending"))
)


def record_sent(message: Message, external_id: str) -> list[Notice]:
    """The platform accepted the message and named it ``external_id``.

    ``message`` may be as the sender read it (only its ids and kind are used, and
    those never change). Joins the caller's transaction if there is one: the send
    worker commits its audit entry with it.
    """
    with database.transaction():
        return attach_external_id(message, external_id, utcnow())


def record_failed(message_id: int, code: int, reason: str) -> list[Notice]:
    """The send ended without reaching the platform; staff read ``reason``."""
    with database.atomic():
        rows = (
            Message.update(
                status=MessageStatus.FAILED,
                failed_at=utcnow(),
                error_code=int(code),
                error_message=reason,
                send_lease_until=None,
            )
            .where(Message.id == message_id, Message.status == MessageStatus.PENDING)
            .returning(Message)
            .execute()
        )
        return status_notices_for(rows)


def record_unconfirmed(
    message_id: int, reason: str, *, settle_by: datetime.datetime
) -> list[Notice]:
    """The platform never answered the send: keep it PENDING, awaiting its webhooks.

    It may have been delivered, so it is never claimed and sent again. A status or
    echo naming this message settles it; otherwise the clock's sweep fails it with
    SEND_UNCONFIRMED after ``settle_by`` (kept in ``send_lease_until``).
    """
    rows = (
        Message.update(
            error_code=ErrorCode.SEND_UNCONFIRMED,
            error_message=reason,
            send_lease_until=settle_by,
        )
        .where(Message.id == message_id, Message.status == MessageStatus.PENDING)
        .returning(Message)
        .execute()
    )
    return status_notices_for(rows)


def retry_failed(message: Message) -> list[Notice]:
    """Start a new attempt for a FAILED reply (the staff's retry button)."""
    with database.atomic():
        rows = (
            Message.update(
                status=MessageStatus.PENDING,
                failed_at=None,
                error_code=None,
                error_message=None,
                send_after=None,
                send_lease_until=None,
            )
            .where(Message.id == message.id, Message.status == MessageStatus.FAILED)
            .returning(Message)
            .execute()
        )
        return status_notices_for(rows)


def mark_conversation_read(conversation: Conversation) -> list[Notice]:
    """Staff have seen everything in the conversation."""
    with database.atomic():
        Conversation.update(unread_count=0).where(Conversation.id == conversation.id).execute()
    return [
        Notice(
            conversation.organization_id,
            "conversation:read",
            {"conversation_id": conversation.id, "unread_count": 0},
        )
    ]
