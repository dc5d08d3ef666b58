"""Changes to platform connections that staff must hear about."""

from __future__ import annotations

from app.db import database, utcnow
from app.messages import Notice
from app.models import ConnectionStatus, PlatformConnection
from app.serializers import connection_json


def mark_needs_reauth(connection_id: int, reason: str) -> list[Notice]:
    """A person must reconnect: sends fail with TOKEN_EXPIRED until they do."""
    with database.atomic():
        rows = list(
            PlatformConnection.update(
                status=ConnectionStatus.NEEDS_REAUTH, status_reason=reason, updated_at=utcnow()
            )
            .where(
                PlatformConnection.id == connection_id,
                PlatformConnection.status != ConnectionStatus.NEEDS_REAUTH,
            )
            .returning(PlatformConnection)
            .execute()
        )
    return [
        Notice(connection.organization_id, "connection:status", connection_json(connection))
        for connection in rows
    ]
