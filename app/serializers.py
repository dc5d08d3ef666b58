"""The JSON shapes of the public API, shared by the HTTP API and the live events."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from app.models import (
    Attachment,
    CannedResponse,
    Contact,
    Conversation,
    Label,
    Message,
    MessageStatus,
    Note,
    PlatformConnection,
    User,
)
from app.platforms.errors import ErrorCode


def timestamp(value: datetime.datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as every API field carries it."""
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"


def message_json(message: Message, attachments: list[Attachment] | None = None) -> dict:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "content": message.content,
        "content_type": message.content_type,
        "status": message.status,
        "external_id": message.external_id,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "sent_by": message.sent_by_id,
        "created_at": timestamp(message.created_at),
        "sent_at": timestamp(message.sent_at),
        "delivered_at": timestamp(message.delivered_at),
        "read_at": timestamp(message.read_at),
        "failed_at": timestamp(message.failed_at),
        # When the customer (or the platform's own app) sent it, as the platform says.
        "platform_timestamp": timestamp(message.platform_timestamp),
        "unconfirmed_until": timestamp(unconfirmed_until(message)),
        "attachments": [attachment_json(a) for a in attachments or ()],
    }


def unconfirmed_until(message: Message) -> datetime.datetime | None:
    """Until when SNORQ waits for a webhook to settle a send the platform never answered.

    The worker keeps that moment in ``send_lease_until`` when it marks the send
    unconfirmed (the time of the mark plus ``SNORQ_SEND_UNCONFIRMED_WAIT``); the
    clock's sweep fails the send once it has passed. None for any other message.
    """
    unconfirmed = message.error_code == ErrorCode.SEND_UNCONFIRMED
    if message.status != MessageStatus.PENDING or not unconfirmed:
        return None
    return message.send_lease_until


def attachment_json(attachment: Attachment) -> dict:
    return {
        "id": attachment.id,
        "kind": attachment.kind,
        "status": attachment.status,
        "mime_type": attachment.mime_type,
        "filename": attachment.filename,
        "size": attachment.size,
        "error": attachment.error,
        "url": f"/api/v1/attachments/{attachment.id}" if attachment.storage_key else None,
    }


def contact_json(contact: Contact) -> dict:
    return {
        "id": contact.id,
        "external_id": contact.external_id,
        "display_name": contact.display_name,
        "phone": contact.phone,
        "username": contact.username,
        "avatar_url": f"/api/v1/contacts/{contact.id}/avatar" if contact.avatar_key else None,
    }


def conversation_json(
    conversation: Conversation, contact: Contact, can_reply: bool, labels: Sequence[Label] = ()
) -> dict:
    return {
        "id": conversation.id,
        "platform": contact.platform,
        "connection_id": conversation.connection_id,
        "contact": contact_json(contact),
        "last_message_preview": conversation.last_message_preview,
        "last_message_at": timestamp(conversation.last_message_at),
        "last_inbound_at": timestamp(conversation.last_inbound_at),
        "unread_count": conversation.unread_count,
        "can_reply": can_reply,
        "labels": [label_json(label) for label in labels],
        **handling_json(conversation),
    }


def handling_json(conversation: Conversation) -> dict:
    """Where a conversation stands and who handles it (README, "Assignment and status")."""
    return {
        "status": conversation.status,
        "snoozed_until": timestamp(conversation.snoozed_until),
        "status_changed_at": timestamp(conversation.status_changed_at),
        "assignee_id": conversation.assignee_id,
    }


def staff_json(user: User) -> dict:
    return {"id": user.id, "email": user.email, "available": user.available}


def label_json(label: Label) -> dict:
    return {"id": label.id, "name": label.name, "color": label.color}


def note_json(note: Note) -> dict:
    """A note; ``author`` is null once the staff member who wrote it is gone."""
    author = note.author
    return {
        "id": note.id,
        "conversation_id": note.conversation_id,
        "author": None if author is None else {"id": author.id, "email": author.email},
        "content": note.content,
        "created_at": timestamp(note.created_at),
    }


def canned_response_json(canned: CannedResponse) -> dict:
    return {"id": canned.id, "shortcut": canned.shortcut, "content": canned.content}


def connection_json(connection: PlatformConnection) -> dict:
    return {
        "id": connection.id,
        "platform": connection.platform,
        "account_id": connection.account_id,
        "name": connection.name,
        "status": connection.status,
        "status_reason": connection.status_reason,
        "token_expires_at": timestamp(connection.token_expires_at),
    }
