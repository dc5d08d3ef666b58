"""Files in conversations: fetched attachments settle, and staff replies carry a file.

A customer's attachment is stored PENDING with the message and settles once
``workers/media.py`` has fetched its file (or given up on it).
"""

from __future__ import annotations

from app.db import database, utcnow
from app.messages.notices import Notice
from app.messages.outbound import create_outbound
from app.models import Attachment, AttachmentStatus, Conversation, Message
from app.serializers import attachment_json, message_json


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
        return [attachment_notice(attachment) for attachment in rows]


def attachment_notice(attachment: Attachment) -> Notice:
    """The ``attachment:status`` notice for an attachment that settled."""
    conversation_id = (
        Message.select(Message.conversation).where(Message.id == attachment.message_id).scalar()
    )
    data = {
        "attachment": attachment_json(attachment),
        "message_id": attachment.message_id,
        "conversation_id": conversation_id,
    }
    return Notice(attachment.organization_id, "attachment:status", data)


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
