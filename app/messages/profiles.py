"""Contact profiles: one job at a time fetches what the platform tells about a customer."""

from __future__ import annotations

import datetime

from app.db import database, utcnow
from app.messages.notices import Notice
from app.models import Contact
from app.serializers import contact_json


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
