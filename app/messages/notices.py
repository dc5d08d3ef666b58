"""Live notices: what a change tells staff, published once it has committed.

Each change returns the notices that describe it; the caller hands them to
:func:`publish` after the transaction, so staff never see something that was
rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app import live
from app.models import Message, attachments_by_message
from app.serializers import message_json


@dataclass(frozen=True)
class Notice:
    """A live event for one organization, published after the change commits."""

    organization_id: int
    type: str
    data: dict


def publish(notices: Iterable[Notice]) -> None:
    """Send the notices, in order, to their organizations' live subscribers (one Redis call)."""
    live.publish_all([(notice.organization_id, notice.type, notice.data) for notice in notices])


def status_notices(
    organization_id: int,
    messages: list[Message],
    kind: str = "message:status",
    files: dict[int, list] | None = None,
) -> list[Notice]:
    """A ``message:status`` (or ``kind``) notice for each of ``messages``, files included.

    Parameters:
      files: The messages' attachments by message id, when the caller knows them.
    """
    if files is None:
        files = attachments_by_message([m.id for m in messages])
    return [
        Notice(organization_id, kind, {"message": message_json(m, files.get(m.id))})
        for m in messages
    ]


def status_notices_for(rows) -> list[Notice]:
    """The ``message:status`` notices for the messages an update returned, if any."""
    messages = list(rows)
    if not messages:
        return []
    return status_notices(messages[0].organization_id, messages)
