"""What platforms send into a conversation: customers' messages, and echoes of business sends.

Each is stored once: an external id is unique per connection and the insert is
insert-or-ignore, so a platform's retry or a second worker stores nothing new.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager

from peewee import SQL, Select

from app import assignment
from app.db import database, is_postgres, utcnow
from app.messages import threads
from app.messages.external_ids import apply_early_statuses, link_external_id, settle_by_echo
from app.messages.notices import Notice
from app.models import Attachment, ContentType, Direction, Message, MessageStatus
from app.platforms.events import MediaRef, MessageEvent
from app.routing import Route
from app.serializers import message_json
from app.statements import Param, Statement


@contextmanager
def transaction() -> Iterator[None]:
    """One transaction around several changes below, which join it instead of committing.

    The inbound worker applies a whole webhook in one: one commit, not one per event.
    If it rolls back, the cached ids go too: they may name rows that were never kept.
    """
    try:
        with database.transaction():
            yield
    except Exception:
        threads.forget_cached_ids()
        raise


def record_message(route: Route, event: MessageEvent) -> list[Notice]:
    """Store a customer's message (or an echo of a business send) once.

    Returns no notices when the platform delivered this message before.
    """
    with transaction():
        if event.direction == Direction.OUTBOUND:
            return _record_echo(route, event)
        return _record_inbound(route, event)


def _record_inbound(route: Route, event: MessageEvent) -> list[Notice]:
    contact_id = threads.contact_id(route, event.contact)
    conversation_id, created = threads.conversation_id(route, contact_id, event.thread_id)
    # Handed out before its first message is stored, so the message's notice names the
    # assignee (a conversation this call created holds no message yet).
    handed_out = assignment.auto_assign(route, conversation_id) if created else []
    # A platform notice in the thread (a changed number) is not the customer writing:
    # it neither opens the messaging window, nor waits to be read, nor reopens anything.
    by_customer = event.content_type != ContentType.SYSTEM
    stored = _insert_message(
        route, conversation_id, event, MessageStatus.RECEIVED, None, by_customer
    )
    if stored is None:
        return handed_out
    message, conversation, reopened = stored
    attachments = _insert_attachments(route, message.id, event.media)
    notice = _new_message_notice(route, message, attachments, conversation, contact_id, event)
    reopening = assignment.reopened_by_customer(route, conversation) if reopened else []
    return [notice, *handed_out, *reopening]


def _record_echo(route: Route, event: MessageEvent) -> list[Notice]:
    if event.snorq_message_id is not None:
        notices = link_external_id(route, event.snorq_message_id, event.external_id)
        if notices is not None:
            return notices
    contact_id = threads.contact_id(route, event.contact)
    conversation_id, _ = threads.conversation_id(route, contact_id, event.thread_id)
    if event.snorq_message_id is None:
        # TikTok names no SNORQ message: the echo may still be an unconfirmed reply's.
        notices = settle_by_echo(route, conversation_id, event)
        if notices is not None:
            return notices
    stored = _insert_message(
        route, conversation_id, event, MessageStatus.SENT, event.timestamp, False
    )
    if stored is None:
        return []
    message, conversation, _ = stored
    attachments = _insert_attachments(route, message.id, event.media)
    notice = _new_message_notice(route, message, attachments, conversation, contact_id, event)
    # A send from outside SNORQ (the Page inbox) may be reported delivered before its echo.
    return [notice, *apply_early_statuses(message, event.external_id)]


def _insert_message(
    route: Route,
    conversation_id: int,
    event: MessageEvent,
    status: str,
    sent_at: datetime.datetime | None,
    by_customer: bool,
) -> tuple[Message, dict, bool] | None:
    """Store the message once and move its conversation forward (``touch_conversation``).

    Returns:
      ``(message, conversation, reopened)`` as ``touch_conversation`` tells them, or
      None when the message was stored before (and the conversation is left as it was).
    """
    message = Message(
        organization=route.organization_id,
        connection=route.connection_id,
        conversation=conversation_id,
        direction=event.direction,
        content_type=event.content_type,
        content=event.content,
        payload=event.payload,
        status=status,
        external_id=event.external_id,
        platform_timestamp=event.timestamp,
        created_at=utcnow(),
        sent_at=sent_at,
    )
    values = {f.name: f.db_value(message.__data__.get(f.name)) for f in _MESSAGE_FIELDS}
    if not is_postgres():
        # SQLite cannot change rows inside a WITH: two statements.
        row = _INSERT_MESSAGE.execute(**values).fetchone()
        if row is None:
            return None
        message.id = row[0]
        return message, *threads.touch_conversation(
            conversation_id, event.content, event.timestamp, by_customer
        )
    touch = threads.touch_values(conversation_id, event.content, event.timestamp)
    row = _INSERT_AND_TOUCH[by_customer].execute(**values, **touch).fetchone()
    if row is None:
        return None
    message.id = row[0]
    return message, *threads.touched(row[1:], touch, by_customer)


#: Every column of a stored message, defaults too: the statement names each one.
_MESSAGE_FIELDS = [field for field in Message._meta.sorted_fields if field is not Message.id]


def _insert_query(param: Param):
    return (
        Message.insert({field: param(field.name) for field in _MESSAGE_FIELDS})
        .on_conflict_ignore()
        .returning(Message.id)
    )


def _insert_and_touch_query(param: Param, by_customer: bool):
    """The insert, then the conversation's update if it stored the message, in one statement.

    One round trip to PostgreSQL; its row is the message's id, then what
    :func:`threads.touched` reads.
    """
    inserted = _insert_query(param).cte("inserted")
    touched = (
        threads.touch_query(param, by_customer)
        .where(SQL('EXISTS (SELECT 1 FROM "inserted")'))
        .cte("touched")
    )
    return Select([inserted, touched], [inserted.c.id, SQL('"touched".*')]).with_cte(
        inserted, touched
    )


_INSERT_MESSAGE = Statement(_insert_query)
_INSERT_AND_TOUCH = {
    by_customer: Statement(
        lambda param, by_customer=by_customer: _insert_and_touch_query(param, by_customer)
    )
    for by_customer in (True, False)
}


def _insert_attachments(route: Route, message_id: int, media: tuple[MediaRef, ...]):
    attachments = []
    for ref in media:
        attachments.append(
            Attachment.create(
                organization=route.organization_id,
                message=message_id,
                kind=ref.kind,
                platform_media_id=ref.media_id,
                source_url=ref.url,
                mime_type=ref.mime_type,
                filename=ref.filename,
                sha256=ref.sha256,
            )
        )
    return attachments


def _new_message_notice(route, message, attachments, conversation, contact_id, event) -> Notice:
    contact = event.contact
    conversation["platform"] = route.platform
    conversation["connection_id"] = route.connection_id
    conversation["contact"] = {
        "id": contact_id,
        "external_id": contact.external_id,
        "display_name": contact.display_name,
        "phone": contact.phone,
        "username": contact.username,
    }
    return Notice(
        route.organization_id,
        "new:message",
        {"message": message_json(message, attachments), "conversation": conversation},
    )
