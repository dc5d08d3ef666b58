"""What the platform reports about sends: one message's status, or a read watermark.

A status for an id no message has yet is kept as an early status, applied when a
message takes that id (:mod:`app.messages.external_ids`).
"""

from __future__ import annotations

from peewee import fn

from app.db import database
from app.messages import statuses
from app.messages.external_ids import link_external_id, lock_external_id
from app.messages.notices import Notice, status_notices
from app.models import Contact, Conversation, Direction, EarlyStatus, Message
from app.platforms.events import StatusEvent, WatermarkEvent
from app.routing import Route


def apply_status(route: Route, event: StatusEvent) -> list[Notice]:
    """Move one outbound message forward; keep the status if the message is not known yet."""

    def advance() -> list[Message]:
        return statuses.advance(
            Message.connection == route.connection_id,
            Message.external_id == event.external_id,
            status=event.status,
            at=event.timestamp,
            error_code=event.error_code,
            error_message=event.error_message,
        )

    with database.transaction():
        changed = advance()
        known = bool(changed) or _exists(route, event.external_id)
        if known and not changed:
            # A send may have committed this id just after ``advance`` looked (on
            # PostgreSQL): look again. A late status changes nothing either time.
            changed = advance()
        if known:
            return status_notices(route.organization_id, changed)
        if event.snorq_message_id is not None:
            linked = link_external_id(route, event.snorq_message_id, event.external_id)
            if linked is not None:
                return linked + status_notices(route.organization_id, advance())
        lock_external_id(route.connection_id, event.external_id)
        changed = advance()
        if changed or _exists(route, event.external_id):
            # The send recorded the id while this status waited for the lock.
            return status_notices(route.organization_id, changed)
        EarlyStatus.insert(
            connection=route.connection_id,
            external_id=event.external_id,
            status=event.status,
            occurred_at=event.timestamp,
            error_code=event.error_code,
            error_message=event.error_message,
        ).on_conflict_ignore().execute()
        return []


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
        changed = statuses.advance(
            Message.conversation.in_(conversation_ids),
            Message.direction == Direction.OUTBOUND,
            fn.COALESCE(Message.platform_timestamp, Message.sent_at) <= event.watermark,
            status=event.status,
            at=event.watermark,
        )
        return status_notices(route.organization_id, changed)


def _exists(route: Route, external_id: str) -> bool:
    return (
        Message.select(Message.id)
        .where(Message.connection == route.connection_id, Message.external_id == external_id)
        .exists()
    )
