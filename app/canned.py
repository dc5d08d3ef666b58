"""Canned responses: an organization's saved answers, inserted by ``/shortcut`` in the composer.

Any staff member may add, change or delete them, as in Chatwoot: they are the
team's shared phrasebook, and every change is audited.
"""

from __future__ import annotations

import re

from app.db import database, utcnow
from app.labels import audit_change, unique_name
from app.models import CannedResponse, User

SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
#: The longest canned response, in characters.
MAX_CONTENT_LENGTH = 5_000


def create_canned(user: User, shortcut: str, content: str) -> CannedResponse:
    """Raises: NameTaken (the shortcut is in use)."""
    with unique_name():
        canned = CannedResponse.create(
            organization=user.organization_id, shortcut=shortcut, content=content
        )
        audit_change(user, "canned_response_create", f"canned response {canned.id}")
    return canned


def update_canned(user: User, canned: CannedResponse, **changes: str) -> None:
    """Change a canned response's ``shortcut`` or ``content``. Raises: NameTaken."""
    with unique_name():
        for field, value in changes.items():
            setattr(canned, field, value)
        canned.updated_at = utcnow()
        canned.save()
        detail = f"canned response {canned.id}: {', '.join(sorted(changes))}"
        audit_change(user, "canned_response_update", detail)


def delete_canned(user: User, canned: CannedResponse) -> None:
    with database.atomic():
        canned.delete_instance()
        audit_change(user, "canned_response_delete", f"canned response {canned.id}")
