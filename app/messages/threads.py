"""The contacts and conversations that messages belong to.

A customer's contact and conversation are found or created on first sight, and
their ids cached: rows are never re-keyed. Each stored message moves its
conversation's preview and clocks forward (:func:`touch_conversation`).
"""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict

from peewee import SQL, Case

from app.db import utcnow
from app.models import Contact, Conversation, ConversationStatus
from app.platforms.events import ContactRef
from app.routing import Route
from app.serializers import timestamp
from app.statements import Param, Statement

PREVIEW_LENGTH = 100


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


def forget_cached_ids() -> None:
    """Forget every cached id: after a rollback they may name rows that were never kept."""
    _ids.clear()


def contact_id(route: Route, ref: ContactRef) -> int:
    """The id of the contact ``ref`` names: cached, or found (and refreshed), or created."""
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


def conversation_id(route: Route, contact_id: int, thread_id: str | None) -> tuple[int, bool]:
    """The id of the contact's conversation on this connection, created on first sight.

    Returns:
      ``(id, created)``: ``created`` is True for the call that inserted it.
    """
    key = ("conversation", route.connection_id, contact_id, thread_id)
    cached = _ids.get(key)
    if cached is not None:
        return cached, False
    inserted = (
        Conversation.insert(
            organization=route.organization_id,
            connection=route.connection_id,
            contact=contact_id,
            external_thread_id=thread_id,
        )
        .on_conflict_ignore()
        .returning(Conversation.id)
        .tuples()
        .execute()
    )
    created = bool(list(inserted))
    conversation = Conversation.get(
        Conversation.connection == route.connection_id, Conversation.contact == contact_id
    )
    if thread_id and conversation.external_thread_id != thread_id:
        Conversation.update(external_thread_id=thread_id).where(
            Conversation.id == conversation.id
        ).execute()
    _ids.put(key, conversation.id)
    return conversation.id, created


def touch_conversation(
    conversation_id: int, content: str, at: datetime.datetime, inbound: bool
) -> tuple[dict, bool]:
    """Move the conversation's preview and clocks forward; count an unread message.

    A message from the customer (``inbound``) also opens the conversation again if
    it was pending, snoozed or resolved.

    Returns:
      ``(conversation, reopened)``: the conversation's fields as the API shows them,
      and whether this message opened it again.
    """
    values = touch_values(conversation_id, content, at)
    return touched(_TOUCH[inbound].execute(**values).fetchone(), values, inbound)


def touch_values(conversation_id: int, content: str, at: datetime.datetime) -> dict:
    """The values :func:`touch_query` takes, for a message written at ``at``."""
    return {"id": conversation_id, "preview": content[:PREVIEW_LENGTH], "at": at, "now": utcnow()}


def touched(row: tuple, values: dict, inbound: bool) -> tuple[dict, bool]:
    """What :func:`touch_conversation` returns, from the row the update returned."""
    preview, last_message_at, last_inbound_at, unread_count = row[:4]
    status, snoozed_until, changed_at, assignee_id = row[4:]
    changed_at = _as_datetime(changed_at)
    conversation = {
        "id": values["id"],
        "last_message_preview": preview,
        "last_message_at": timestamp(_as_datetime(last_message_at)),
        "last_inbound_at": timestamp(_as_datetime(last_inbound_at)),
        "unread_count": unread_count,
        "status": status,
        "snoozed_until": timestamp(_as_datetime(snoozed_until)),
        "status_changed_at": timestamp(changed_at),
        "assignee_id": assignee_id,
    }
    # Only this update stamps the status change with this very moment.
    return conversation, inbound and changed_at == values["now"]


def touch_query(param: Param, inbound: bool):
    """The update :func:`touch_conversation` makes, with the values of :func:`touch_values`.

    It returns the conversation's fields in the order :func:`touched` reads them.
    """
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
        put_away = Conversation.status.in_(
            [SQL(f"'{status}'") for status in ConversationStatus.REOPENED_BY_CUSTOMER]
        )
        changes[Conversation.status] = Case(
            None, [(put_away, SQL(f"'{ConversationStatus.OPEN}'"))], Conversation.status
        )
        changes[Conversation.snoozed_until] = Case(
            None, [(put_away, SQL("NULL"))], Conversation.snoozed_until
        )
        changes[Conversation.status_changed_at] = Case(
            None, [(put_away, param("now"))], Conversation.status_changed_at
        )
    return (
        Conversation.update(changes)
        .where(Conversation.id == param("id"))
        .returning(
            Conversation.last_message_preview,
            Conversation.last_message_at,
            Conversation.last_inbound_at,
            Conversation.unread_count,
            Conversation.status,
            Conversation.snoozed_until,
            Conversation.status_changed_at,
            Conversation.assignee,
        )
    )


_TOUCH = {
    inbound: Statement(lambda param, inbound=inbound: touch_query(param, inbound))
    for inbound in (True, False)
}


def _as_datetime(value):
    """SQLite hands back RETURNING timestamps as text; PostgreSQL as datetimes."""
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    return value
