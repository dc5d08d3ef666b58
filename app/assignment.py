"""Who handles each conversation, and where it stands (README, "Assignment and status").

Staff assign a conversation to a colleague (or to nobody) and move it between
OPEN, PENDING, SNOOZED and RESOLVED. A customer's new message opens it again
(``app/messages/threads.py`` does it in the update every message makes), and so
does the clock once a snooze is over. An organization may have its new
conversations handed out in turn among the staff marked available.

Each change is audited in its own transaction and returns the live notices that
describe it, for the caller to publish once it has committed. Both kinds of
notice carry the same fields: :func:`handling_json`'s, and ``by``, the staff
member who made the change (null when SNOORQ made it).
"""

from __future__ import annotations

import datetime

from app import audit
from app.db import database, is_postgres, utcnow
from app.messages.notices import Notice
from app.models import (
    Conversation,
    ConversationStatus,
    Organization,
    PlatformConnection,
    User,
)
from app.routing import Route
from app.serializers import handling_json

#: Snoozed conversations the clock opens again per transaction.
WAKE_BATCH = 200


def assign(user: User, conversation: Conversation, assignee: User | None) -> list[Notice]:
    """Hand the conversation to ``assignee`` (one of the organization's staff), or to nobody."""
    assignee_id = None if assignee is None else assignee.id
    if conversation.assignee_id == assignee_id:
        return []
    with database.atomic():
        conversation.assignee = assignee_id
        Conversation.update(assignee=assignee_id).where(
            Conversation.id == conversation.id
        ).execute()
        to = "nobody" if assignee is None else f"staff {assignee_id}"
        _audit(conversation, "assign", f"assigned to {to}", user.id)
    return [_notice("conversation:assigned", conversation, user.id)]


def set_status(
    user: User,
    conversation: Conversation,
    status: str,
    snoozed_until: datetime.datetime | None = None,
) -> list[Notice]:
    """Move the conversation to ``status``; ``snoozed_until`` is for SNOOZED only."""
    if (conversation.status, conversation.snoozed_until) == (status, snoozed_until):
        return []
    before = conversation.status
    with database.atomic():
        conversation.status = status
        conversation.snoozed_until = snoozed_until
        conversation.status_changed_at = utcnow()
        conversation.save(
            only=[Conversation.status, Conversation.snoozed_until, Conversation.status_changed_at]
        )
        until = f" until {snoozed_until.isoformat()}Z" if snoozed_until else ""
        _audit(conversation, "conversation_status", f"{before} → {status}{until}", user.id)
    return [_notice("conversation:status", conversation, user.id)]


def reopened_by_customer(route: Route, conversation: dict) -> list[Notice]:
    """Audit that a customer's message opened the conversation again (in its transaction).

    Parameters:
      conversation: The fields :func:`app.messages.threads.touch_conversation` returned.
    """
    audit.record(
        "conversation_status",
        platform=route.platform,
        ok=True,
        detail=f"conversation {conversation['id']}: opened again by a message from the customer",
        organization_id=route.organization_id,
        connection_id=route.connection_id,
    )
    data = {key: conversation[key] for key in _FIELDS}
    data.update(conversation_id=conversation["id"], by=None)
    return [Notice(route.organization_id, "conversation:status", data)]


def auto_assign(route: Route, conversation_id: int) -> list[Notice]:
    """Give a new conversation to the available staff member longest without one, if the
    organization hands them out (in the transaction that created it).

    On PostgreSQL, a staff member being handed another conversation at the same moment
    is skipped, so two conversations arriving together go to two people.
    """
    if not Organization.get_by_id(route.organization_id).auto_assign:
        return []
    candidates = (
        User.select(User.id)
        .where(User.organization == route.organization_id, User.available == True)  # noqa: E712
        .order_by(User.last_assigned_at.is_null(False), User.last_assigned_at, User.id)
        .limit(1)
    )
    picked = None
    if is_postgres():
        picked = candidates.for_update("FOR UPDATE SKIP LOCKED").scalar()
    picked = picked or candidates.scalar()
    if picked is None:
        return []
    User.update(last_assigned_at=utcnow()).where(User.id == picked).execute()
    Conversation.update(assignee=picked).where(Conversation.id == conversation_id).execute()
    conversation = Conversation.get_by_id(conversation_id)
    conversation.connection = PlatformConnection(id=route.connection_id, platform=route.platform)
    _audit(conversation, "assign", f"assigned to staff {picked} in turn", None)
    return [_notice("conversation:assigned", conversation, None)]


def wake_snoozed(now: datetime.datetime) -> list[Notice]:
    """Open again every conversation whose snooze is over (the clock, every minute).

    A conversation someone changed meanwhile is left as they left it.
    """
    notices: list[Notice] = []
    while True:
        due = list(
            Conversation.select(Conversation, PlatformConnection)
            .join(PlatformConnection)
            .where(
                Conversation.status == ConversationStatus.SNOOZED,
                Conversation.snoozed_until <= now,
            )
            .order_by(Conversation.snoozed_until)
            .limit(WAKE_BATCH)
        )
        with database.atomic():
            for conversation in due:
                woken = (
                    Conversation.update(
                        status=ConversationStatus.OPEN, snoozed_until=None, status_changed_at=now
                    )
                    .where(
                        Conversation.id == conversation.id,
                        Conversation.status == ConversationStatus.SNOOZED,
                        Conversation.snoozed_until <= now,
                    )
                    .execute()
                )
                if not woken:
                    continue
                conversation.status = ConversationStatus.OPEN
                conversation.snoozed_until, conversation.status_changed_at = None, now
                _audit(conversation, "conversation_status", "SNOOZED → OPEN: snooze over", None)
                notices.append(_notice("conversation:status", conversation, None))
        if len(due) < WAKE_BATCH:
            return notices


_FIELDS = ("status", "snoozed_until", "status_changed_at", "assignee_id")


def _notice(kind: str, conversation: Conversation, by: int | None) -> Notice:
    data = {"conversation_id": conversation.id, **handling_json(conversation), "by": by}
    return Notice(conversation.organization_id, kind, data)


def _audit(conversation: Conversation, action: str, change: str, user_id: int | None) -> None:
    audit.record(
        action,
        platform=conversation.connection.platform,
        ok=True,
        detail=f"conversation {conversation.id}: {change}",
        organization_id=conversation.organization_id,
        connection_id=conversation.connection_id,
        user_id=user_id,
    )
