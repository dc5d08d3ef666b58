"""Labels: an organization's coloured tags, and which conversations carry them.

Admins define the labels; any staff member puts them on conversations. Each
change is audited in its own transaction and returns the live notices that
describe it, for the caller to publish once it has committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from peewee import IntegrityError

from app import audit
from app.db import database
from app.messages.notices import Notice
from app.models import Conversation, ConversationLabel, Label, User, labels_by_conversation
from app.serializers import label_json

#: The audit log's platform for what belongs to no platform (a label, a canned response).
ORGANIZATION_LEVEL = "snorq"


class NameTaken(Exception):
    """The organization has a label (or a canned response) of that name already."""


def create_label(user: User, name: str, color: str) -> tuple[Label, list[Notice]]:
    """Raises: NameTaken."""
    with unique_name():
        label = Label.create(organization=user.organization_id, name=name, color=color)
        audit_change(user, "label_create", f"label {label.id}")
    return label, [Notice(label.organization_id, "label:created", {"label": label_json(label)})]


def update_label(user: User, label: Label, **changes: str) -> list[Notice]:
    """Rename or recolour a label (``name``, ``color``); everyone's chips follow.

    Raises: NameTaken.
    """
    with unique_name():
        for field, value in changes.items():
            setattr(label, field, value)
        label.save()
        audit_change(user, "label_update", f"label {label.id}: {', '.join(sorted(changes))}")
    return [Notice(label.organization_id, "label:updated", {"label": label_json(label)})]


def delete_label(user: User, label: Label) -> list[Notice]:
    """Delete a label, and so take it off every conversation."""
    with database.atomic():
        label.delete_instance()
        audit_change(user, "label_delete", f"label {label.id}")
    return [Notice(label.organization_id, "label:deleted", {"label_id": label.id})]


def set_labels(user: User, conversation: Conversation, labels: list[Label]) -> list[Notice]:
    """Make ``labels`` (the organization's, checked by the caller) the conversation's labels."""
    ids = sorted({label.id for label in labels})
    with database.atomic():
        ConversationLabel.delete().where(
            ConversationLabel.conversation == conversation.id,
            ConversationLabel.label.not_in(ids),
        ).execute()
        if ids:
            rows = [{"conversation": conversation.id, "label": label_id} for label_id in ids]
            ConversationLabel.insert_many(rows).on_conflict_ignore().execute()
        audit.record(
            "conversation_labels",
            platform=conversation.connection.platform,
            ok=True,
            detail=f"conversation {conversation.id}: labels {ids or 'none'}",
            organization_id=conversation.organization_id,
            connection_id=conversation.connection_id,
            user_id=user.id,
        )
    current = labels_by_conversation([conversation.id]).get(conversation.id, [])
    data = {"conversation_id": conversation.id, "labels": [label_json(x) for x in current]}
    return [Notice(conversation.organization_id, "conversation:labels", data)]


@contextmanager
def unique_name() -> Iterator[None]:
    """A transaction in which a duplicate name rolls back and raises NameTaken."""
    try:
        with database.atomic():
            yield
    except IntegrityError as error:
        raise NameTaken from error


def audit_change(user: User, action: str, detail: str) -> None:
    """Audit a change to something of the organization's that belongs to no platform."""
    audit.record(
        action,
        platform=ORGANIZATION_LEVEL,
        ok=True,
        detail=detail,
        organization_id=user.organization_id,
        user_id=user.id,
    )
