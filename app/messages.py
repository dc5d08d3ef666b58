"""The only code that writes conversations and messages.

Each public function makes one change in one transaction and returns the live
notices that describe it; the caller publishes them once the transaction has
committed (:func:`publish`), so staff never see something that was rolled back.

Exactly-once rests on the database, not on checks: an external id is unique per
connection and every insert is insert-or-ignore, so two workers storing the same
platform message at the same moment store it once. Statuses only move forward.
"""

from __future__ import annotations

import datetime
import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from peewee import SQL, Case, fn

from app import live
from app.db import database, is_postgres, utcnow
from app.models import (
    Attachment,
    AttachmentStatus,
    Contact,
    ContentType,
    Conversation,
    Direction,
    EarlyStatus,
    Message,
    MessageStatus,
)
from app.platforms.errors import ErrorCode
from app.platforms.events import ContactRef, MediaRef, MessageEvent, StatusEvent, WatermarkEvent
from app.routing import Route
from app.serializers import attachment_json, contact_json, message_json, timestamp
from app.statements import Param, Statement

log = logging.getLogger(__name__)

PREVIEW_LENGTH = 100

#: The timestamp column each status sets.
STATUS_COLUMNS = {
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.FAILED: "failed_at",
}


@dataclass(frozen=True)
class Notice:
    """A live event for one organization, published after the change commits."""

    organization_id: int
    type: str
    data: dict


def publish(notices: Iterable[Notice]) -> None:
    for notice in notices:
        live.publish(notice.organization_id, notice.type, notice.data)


# -- inbound --------------------------------------------------------------------


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
        _ids.clear()
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
    contact_id = _contact_id(route, event.contact)
    conversation_id = _conversation_id(route, contact_id, event.thread_id)
    message = _insert_message(
        route, conversation_id, event, status=MessageStatus.RECEIVED, sent_at=None
    )
    if message is None:
        return []
    attachments = _insert_attachments(route, message.id, event.media)
    # A platform notice in the thread (a changed number) is not the customer writing:
    # it neither opens the messaging window nor waits to be read.
    by_customer = event.content_type != ContentType.SYSTEM
    conversation = _touch_conversation(conversation_id, event.content, event.timestamp, by_customer)
    return [_new_message_notice(route, message, attachments, conversation, contact_id, event)]


def _record_echo(route: Route, event: MessageEvent) -> list[Notice]:
    if event.snorq_message_id is not None:
        notices = _link_external_id(route, event.snorq_message_id, event.external_id)
        if notices is not None:
            return notices
    contact_id = _contact_id(route, event.contact)
    conversation_id = _conversation_id(route, contact_id, event.thread_id)
    message = _insert_message(
        route, conversation_id, event, status=MessageStatus.SENT, sent_at=event.timestamp
    )
    if message is None:
        return []
    attachments = _insert_attachments(route, message.id, event.media)
    conversation = _touch_conversation(conversation_id, event.content, event.timestamp, False)
    notice = _new_message_notice(route, message, attachments, conversation, contact_id, event)
    # A send from outside SNORQ (the Page inbox) may be reported delivered before its echo.
    return [notice, *_apply_early_statuses(message, event.external_id)]


def _insert_message(
    route: Route,
    conversation_id: int,
    event: MessageEvent,
    *,
    status: str,
    sent_at: datetime.datetime | None,
) -> Message | None:
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
    row = _INSERT_MESSAGE.execute(**values).fetchone()
    if row is None:
        return None
    message.id = row[0]
    return message


#: Every column of a stored message, defaults too: the statement names each one.
_MESSAGE_FIELDS = [field for field in Message._meta.sorted_fields if field is not Message.id]

_INSERT_MESSAGE = Statement(
    lambda param: (
        Message.insert({field: param(field.name) for field in _MESSAGE_FIELDS})
        .on_conflict_ignore()
        .returning(Message.id)
    )
)


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


def _touch_conversation(
    conversation_id: int, content: str, at: datetime.datetime, inbound: bool
) -> dict:
    """Move the conversation's preview and clocks forward; count an unread message."""
    row = (
        _TOUCH[inbound]
        .execute(id=conversation_id, preview=content[:PREVIEW_LENGTH], at=at)
        .fetchone()
    )
    preview, last_message_at, last_inbound_at, unread_count = row
    return {
        "id": conversation_id,
        "last_message_preview": preview,
        "last_message_at": timestamp(_as_datetime(last_message_at)),
        "last_inbound_at": timestamp(_as_datetime(last_inbound_at)),
        "unread_count": unread_count,
    }


def _touch_query(param: Param, inbound: bool):
    """The update :func:`_touch_conversation` makes, with ``at``, ``preview`` and ``id``."""
    at = param("at")
    newer = Conversation.last_message_at.is_null() | (Conversation.last_message_at <= at)
    changes = {
        Conversation.last_message_preview: Case(
            None, [(newer, param("preview"))], Conversation.last_message_preview
        ),
        Conversation.last_message_at: Case(None, [(newer, at)], Conversation.last_message_at),
    }
    if inbound:
        later = Conversation.last_inbound_at.is_null() | (Conversation.last_inbound_at < at)
        changes[Conversation.last_inbound_at] = Case(
            None, [(later, at)], Conversation.last_inbound_at
        )
        changes[Conversation.unread_count] = Conversation.unread_count + SQL("1")
    return (
        Conversation.update(changes)
        .where(Conversation.id == param("id"))
        .returning(
            Conversation.last_message_preview,
            Conversation.last_message_at,
            Conversation.last_inbound_at,
            Conversation.unread_count,
        )
    )


_TOUCH = {
    inbound: Statement(lambda param, inbound=inbound: _touch_query(param, inbound))
    for inbound in (True, False)
}


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


# -- contacts and conversations (ids cached: rows are never re-keyed) ----------------


class _IdCache:
    """A bounded, thread-safe map of natural keys to row ids already committed."""

    def __init__(self, size: int = 50_000) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict = OrderedDict()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            if len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_ids = _IdCache()


def _contact_id(route: Route, ref: ContactRef) -> int:
    key = ("contact", route.organization_id, route.platform, ref)
    cached = _ids.get(key)
    if cached is not None:
        return cached
    contact = _find_contact(route, ref)
    if contact is None:
        Contact.insert(
            organization=route.organization_id,
            platform=route.platform,
            external_id=ref.external_id,
            phone=ref.phone,
            username=ref.username,
            display_name=ref.display_name,
        ).on_conflict_ignore().execute()
        contact = _find_contact(route, ref)
    else:
        _refresh_contact(contact, ref)
    _ids.put(key, contact.id)
    return contact.id


def _find_contact(route: Route, ref: ContactRef) -> Contact | None:
    """The contact ``ref`` names: by its id, or (WhatsApp) by the phone number it had."""
    matches = Contact.external_id == ref.external_id
    if ref.phone:
        matches |= Contact.phone == ref.phone
    candidates = list(
        Contact.select()
        .where(
            Contact.organization == route.organization_id,
            Contact.platform == route.platform,
            matches,
        )
        .order_by(Contact.id)
    )
    exact = [c for c in candidates if c.external_id == ref.external_id]
    return (exact or candidates or [None])[0]


def _refresh_contact(contact: Contact, ref: ContactRef) -> None:
    """Keep what the platform now says: a business-scoped id, the number, the name."""
    changes = {}
    if contact.external_id != ref.external_id and contact.external_id == contact.phone:
        changes[Contact.external_id] = ref.external_id
    # A handle given as the name (TikTok) does not undo a name from the profile.
    handle_only = ref.display_name == ref.username
    named = contact.display_name not in (None, contact.username)
    for field, value in (
        (Contact.phone, ref.phone),
        (Contact.display_name, None if handle_only and named else ref.display_name),
        (Contact.username, ref.username),
    ):
        if value and getattr(contact, field.name) != value:
            changes[field] = value
    if changes:
        Contact.update(changes).where(Contact.id == contact.id).execute()


def _conversation_id(route: Route, contact_id: int, thread_id: str | None) -> int:
    key = ("conversation", route.connection_id, contact_id, thread_id)
    cached = _ids.get(key)
    if cached is not None:
        return cached
    Conversation.insert(
        organization=route.organization_id,
        connection=route.connection_id,
        contact=contact_id,
        external_thread_id=thread_id,
    ).on_conflict_ignore().execute()
    conversation = Conversation.get(
        Conversation.connection == route.connection_id, Conversation.contact == contact_id
    )
    if thread_id and conversation.external_thread_id != thread_id:
        Conversation.update(external_thread_id=thread_id).where(
            Conversation.id == conversation.id
        ).execute()
    _ids.put(key, conversation.id)
    return conversation.id


# -- statuses ------------------------------------------------------------------------


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


def apply_status(route: Route, event: StatusEvent) -> list[Notice]:
    """Move one outbound message forward; keep the status if the message is not known yet."""

    def advance() -> list[Message]:
        return _advance(
            Message.connection == route.connection_id,
            Message.external_id == event.external_id,
            status=event.status,
            at=event.timestamp,
            error_code=event.error_code,
            error_message=event.error_message,
        )

    with database.transaction():
        changed = advance()
        if changed or _exists(route, event.external_id):
            return _status_notices(route.organization_id, changed)
        if event.snorq_message_id is not None:
            linked = _link_external_id(route, event.snorq_message_id, event.external_id)
            if linked is not None:
                return linked + _status_notices(route.organization_id, advance())
        _lock_external_id(route.connection_id, event.external_id)
        changed = advance()
        if changed or _exists(route, event.external_id):
            # The send recorded the id while this status waited for the lock.
            return _status_notices(route.organization_id, changed)
        EarlyStatus.insert(
            connection=route.connection_id,
            external_id=event.external_id,
            status=event.status,
            occurred_at=event.timestamp,
            error_code=event.error_code,
            error_message=event.error_message,
        ).on_conflict_ignore().execute()
        return []


def _lock_external_id(connection_id: int, external_id: str) -> None:
    """Take turns, until commit, with whoever keeps or applies early statuses of this id.

    Without it, on PostgreSQL, a status kept while a send records the same id could
    be missed by both: neither sees what the other has not committed yet. (SQLite
    runs one write transaction at a time already.)
    """
    if is_postgres():
        key = zlib.crc32(external_id.encode()) - 2**31
        database.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (connection_id, key))


def _apply_early_statuses(message: Message, external_id: str, also=()) -> list[Notice]:
    """Apply, in order, the statuses that arrived before ``message`` had ``external_id``.

    ``also`` adds statuses known another way (an echo's, when the send recorded late).
    """
    _lock_external_id(message.connection_id, external_id)
    early = list(
        EarlyStatus.select().where(
            EarlyStatus.connection == message.connection_id,
            EarlyStatus.external_id == external_id,
        )
    )
    receipts = [*early, *also]
    if receipts:
        # The platform saw the message before SNORQ recorded sending it.
        first = min(status.occurred_at for status in receipts)
        Message.update(sent_at=first).where(
            Message.id == message.id, Message.sent_at > first
        ).execute()
    notices = []
    for status in sorted(receipts, key=lambda s: MessageStatus.ORDER.get(s.status, 9)):
        changed = _advance(
            Message.id == message.id,
            status=status.status,
            at=status.occurred_at,
            error_code=status.error_code,
            error_message=status.error_message,
        )
        notices += _status_notices(message.organization_id, changed)
    if early:
        EarlyStatus.delete().where(EarlyStatus.id.in_([s.id for s in early])).execute()
    return notices


def apply_watermark(route: Route, event: WatermarkEvent) -> list[Notice]:
    """Everything sent to the contact at or before the watermark reached the status."""
    with database.transaction():
        conversation_ids = (
            Conversation.select(Conversation.id)
            .join(Contact)
            .where(
                Conversation.connection == route.connection_id,
                Contact.external_id == event.contact_external_id,
            )
        )
        changed = _advance(
            Message.conversation.in_(conversation_ids),
            Message.direction == Direction.OUTBOUND,
            fn.COALESCE(Message.platform_timestamp, Message.sent_at) <= event.watermark,
            status=event.status,
            at=event.watermark,
        )
        return _status_notices(route.organization_id, changed)


def _advance(*where, status: str, at: datetime.datetime, error_code=None, error_message=None):
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


def _exists(route: Route, external_id: str) -> bool:
    return (
        Message.select(Message.id)
        .where(Message.connection == route.connection_id, Message.external_id == external_id)
        .exists()
    )


def _status_notices(organization_id: int, messages: list[Message]) -> list[Notice]:
    return [
        Notice(organization_id, "message:status", {"message": message_json(m)}) for m in messages
    ]


def _as_datetime(value):
    """SQLite hands back RETURNING timestamps as text; PostgreSQL as datetimes."""
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    return value


# -- outbound ------------------------------------------------------------------------


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
        summary = _touch_conversation(conversation.id, content, now, False)
        summary["platform"] = conversation.connection.platform
        summary["connection_id"] = conversation.connection_id
        return message, [
            Notice(
                conversation.organization_id,
                "new:message",
                {"message": message_json(message), "conversation": summary},
            )
        ]


def claim_send(message_id: int, lease: datetime.timedelta) -> Message | None:
    """Take the right to send a PENDING message for ``lease``; None if someone else has it.

    A message whose send went unanswered (SEND_UNCONFIRMED) is never claimed again:
    it may have been delivered, and sending it twice is worse than failing it.
    """
    now = utcnow()
    rows = (
        Message.update(
            send_lease_until=now + lease,
            send_after=None,
            send_attempts=Message.send_attempts + 1,
        )
        .where(
            Message.id == message_id,
            Message.status == MessageStatus.PENDING,
            Message.send_lease_until.is_null() | (Message.send_lease_until < now),
            Message.error_code.is_null() | (Message.error_code != ErrorCode.SEND_UNCONFIRMED),
        )
        .returning(Message)
        .execute()
    )
    return next(iter(rows), None)


def defer_send(message_id: int, until: datetime.datetime) -> None:
    """Give up the claim until ``until`` (waiting for a rate-limit token or a retry).

    The sweep leaves the message alone until then. An attempt that never reached the
    platform leaves nothing unconfirmed behind, so its in-flight mark goes too.
    """
    Message.update(
        send_after=until, send_lease_until=None, error_code=None, error_message=None
    ).where(Message.id == message_id, Message.status == MessageStatus.PENDING).execute()


def record_sent(message_id: int, external_id: str) -> list[Notice]:
    """The platform accepted the message and named it ``external_id``."""
    with database.atomic():
        message = Message.get_or_none(Message.id == message_id)
        if message is None:
            return []
        return _attach_external_id(message, external_id, utcnow())


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
        return _status_notices_for(rows)


def mark_sending(message_id: int, reason: str, *, settle_by: datetime.datetime) -> None:
    """The worker is about to call the platform: from now on the send may have reached it.

    Marked as unconfirmed (see :func:`record_unconfirmed`) until the call's outcome is
    recorded, so a worker that dies mid-call leaves a send that is never claimed and
    sent again. No live event: the message is PENDING before and after.
    """
    Message.update(
        error_code=ErrorCode.SEND_UNCONFIRMED, error_message=reason, send_lease_until=settle_by
    ).where(Message.id == message_id, Message.status == MessageStatus.PENDING).execute()


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
    return _status_notices_for(rows)


# -- the sweep: nothing waits forever ------------------------------------------------


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
        return _status_notices_for(rows)


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
        return _status_notices_for(rows)


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
        return _status_notices_for(rows)


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


def _link_external_id(route: Route, snorq_message_id: int, external_id: str):
    """Link a platform id to SNORQ's own message; None if that message is not ours."""
    message = Message.get_or_none(
        Message.id == snorq_message_id,
        Message.connection == route.connection_id,
        Message.direction == Direction.OUTBOUND,
    )
    if message is None:
        return None
    if message.external_id is not None:
        return []
    return _attach_external_id(message, external_id, utcnow())


def _attach_external_id(message: Message, external_id: str, at: datetime.datetime):
    """Record SENT with the platform's id, then apply statuses that arrived first."""
    notices = []
    twin = Message.get_or_none(
        Message.connection == message.connection_id,
        Message.external_id == external_id,
        Message.id != message.id,
    )
    if twin is not None:
        # The platform's echo of this very send was stored before the send returned.
        twin.delete_instance()
        notices.append(
            Notice(
                message.organization_id,
                "message:deleted",
                {"id": twin.id, "conversation_id": twin.conversation_id},
            )
        )
    rows = (
        Message.update(
            status=Case(
                None,
                [(Message.status == MessageStatus.PENDING, MessageStatus.SENT)],
                Message.status,
            ),
            external_id=external_id,
            sent_at=fn.COALESCE(Message.sent_at, at),
            error_code=None,
            error_message=None,
            send_lease_until=None,
        )
        .where(Message.id == message.id, Message.external_id.is_null())
        .returning(Message)
        .execute()
    )
    updated = list(rows)
    if not updated:
        return notices
    notices.append(
        Notice(message.organization_id, "message:sent", {"message": message_json(updated[0])})
    )
    also = []
    if twin is not None and twin.status in STATUS_COLUMNS and twin.status != MessageStatus.SENT:
        at_twin = getattr(twin, STATUS_COLUMNS[twin.status]) or at
        also.append(EarlyStatus(status=twin.status, occurred_at=at_twin))
    return notices + _apply_early_statuses(message, external_id, also)


def _status_notices_for(rows) -> list[Notice]:
    messages = list(rows)
    if not messages:
        return []
    return _status_notices(messages[0].organization_id, messages)


# -- media: fetched files, replies carrying a file, contact profiles (workers/media.py) --


def attachment_available(
    attachment_id: int,
    *,
    storage_key: str,
    mime_type: str,
    size: int,
    sha256: str,
    filename: str,
) -> list[Notice]:
    """The file of a PENDING attachment is in storage: staff can open it."""
    return _settle_attachment(
        attachment_id,
        status=AttachmentStatus.AVAILABLE,
        storage_key=storage_key,
        mime_type=mime_type,
        size=size,
        sha256=sha256,
        filename=filename,
        error=None,
    )


def attachment_failed(attachment_id: int, reason: str) -> list[Notice]:
    """A PENDING attachment will never have its file; staff read ``reason``."""
    return _settle_attachment(attachment_id, status=AttachmentStatus.FAILED, error=reason)


def _settle_attachment(attachment_id: int, **changes) -> list[Notice]:
    with database.atomic():
        rows = list(
            Attachment.update(updated_at=utcnow(), **changes)
            .where(Attachment.id == attachment_id, Attachment.status == AttachmentStatus.PENDING)
            .returning(Attachment)
            .execute()
        )
        return [_attachment_notice(attachment) for attachment in rows]


def _attachment_notice(attachment: Attachment) -> Notice:
    conversation_id = (
        Message.select(Message.conversation).where(Message.id == attachment.message_id).scalar()
    )
    data = {
        "attachment": attachment_json(attachment),
        "message_id": attachment.message_id,
        "conversation_id": conversation_id,
    }
    return Notice(attachment.organization_id, "attachment:status", data)


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
        return [_attachment_notice(attachment) for attachment in rows]


def create_media_outbound(
    conversation: Conversation,
    *,
    user_id: int | None,
    content: str,
    content_type: str,
    options: dict | None,
    idempotency_key: str | None,
    attachment: dict,
) -> tuple[Message, list[Attachment], list[Notice]]:
    """Store a staff reply carrying a file (already in storage) as PENDING.

    Parameters:
      attachment: The file's ``kind``, ``mime_type``, ``filename``, ``size``,
        ``sha256`` and ``storage_key``.

    Returns:
      ``(message, attachments, notices)``; for an idempotency key used before, the
      first message with its attachments, and no notices.
    """
    with database.atomic():
        message, notices = create_outbound(
            conversation,
            user_id=user_id,
            content=content,
            content_type=content_type,
            options=options,
            idempotency_key=idempotency_key,
        )
        if not notices:
            return message, list(message.attachments), []
        stored = Attachment.create(
            organization=conversation.organization_id,
            message=message.id,
            status=AttachmentStatus.AVAILABLE,
            **attachment,
        )
        new, *others = notices
        data = {**new.data, "message": message_json(message, [stored])}
        return message, [stored], [Notice(new.organization_id, new.type, data), *others]


def claim_profile(contact_id: int, stale_before: datetime.datetime) -> bool:
    """Take the fetch of a contact's profile; False when it is fresh or another job has it."""
    now = utcnow()
    stale = Contact.profile_fetched_at.is_null() | (Contact.profile_fetched_at < stale_before)
    claimed = (
        Contact.update(profile_fetched_at=now).where(Contact.id == contact_id, stale).execute()
    )
    return claimed == 1


def release_profile(contact_id: int) -> None:
    """The profile could not be fetched now: the next job may try again."""
    Contact.update(profile_fetched_at=None).where(Contact.id == contact_id).execute()


def record_profile(
    contact_id: int, *, display_name: str | None, avatar_key: str | None
) -> list[Notice]:
    """What the platform tells about a customer; what it leaves out stays as it was."""
    changes = {}
    if display_name:
        changes[Contact.display_name] = display_name
    if avatar_key:
        changes[Contact.avatar_key] = avatar_key
    if not changes:
        return []
    with database.atomic():
        rows = list(
            Contact.update(changes).where(Contact.id == contact_id).returning(Contact).execute()
        )
    return [
        Notice(c.organization_id, "contact:updated", {"contact": contact_json(c)}) for c in rows
    ]
