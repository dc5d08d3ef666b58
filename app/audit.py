"""The audit log: every platform interaction, who asked for it and how it ended.

Entries name the action and its outcome in words; they never hold a token, a
secret or a message body (callers pass ids and error codes, not content).
"""

from __future__ import annotations

from app.models import AuditLog


def record(
    action: str,
    *,
    platform: str,
    ok: bool,
    detail: str = "",
    organization_id: int | None = None,
    connection_id: int | None = None,
    user_id: int | None = None,
) -> None:
    """Append one entry (e.g. ``send``, ``token_exchange``, ``token_refresh``)."""
    AuditLog.create(
        action=action,
        platform=platform,
        ok=ok,
        detail=detail,
        organization=organization_id,
        connection=connection_id,
        user=user_id,
    )
