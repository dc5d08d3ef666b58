"""Private notes: what staff write to each other in a thread (README, "Notes, labels…").

A note is stored in its own table, never as a message, so nothing that sends,
sweeps or counts messages can ever see one.
"""

from __future__ import annotations

from peewee import JOIN

from app import audit
from app.db import database
from app.messages.notices import Notice
from app.models import Conversation, Note, User
from app.serializers import note_json

#: The longest note, in characters.
MAX_NOTE_LENGTH = 10_000


def add_note(conversation: Conversation, author: User, content: str) -> tuple[Note, list[Notice]]:
    """Store and audit a note; its ``note:created`` notice is for the caller to publish.

    ``conversation`` comes with its connection (the audit log names its platform).
    """
    with database.atomic():
        note = Note.create(
            organization=conversation.organization_id,
            conversation=conversation.id,
            author=author.id,
            content=content,
        )
        audit.record(
            "note_create",
            platform=conversation.connection.platform,
            ok=True,
            detail=f"note {note.id} on conversation {conversation.id}",
            organization_id=conversation.organization_id,
            connection_id=conversation.connection_id,
            user_id=author.id,
        )
    note.author = author
    data = {"conversation_id": conversation.id, "note": note_json(note)}
    return note, [Notice(conversation.organization_id, "note:created", data)]


def notes_of(conversation: Conversation, *, limit: int, before: int | None = None) -> list[Note]:
    """The conversation's latest ``limit`` notes (before note ``before``), oldest first."""
    query = (
        Note.select(Note, User)
        .join(User, JOIN.LEFT_OUTER, on=(Note.author == User.id))
        .where(Note.conversation == conversation.id)
    )
    if before is not None:
        query = query.where(Note.id < before)
    return list(query.order_by(Note.id.desc()).limit(limit))[::-1]
