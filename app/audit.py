"""The audit log: every platform interaction, who asked for it and how it ended.

Entries name the action and its outcome in words; they never hold a token, a
secret or a message body (callers pass ids and error codes, not content).
"""

from __future__ import annotations

from app.models import AuditLog
from app.platforms.errors import PlatformError


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


def outcome(error: PlatformError) -> str:
    """The detail of a failed platform call: SNORQ's code and the platform's, never its words.

    A platform's text may quote what it was sent, so it stays out of the audit log.
    """
    platform_code = "" if error.platform_code is None else f", platform code {error.platform_code}"
    note = ", may have been delivered" if getattr(error, "maybe_delivered", False) else ""
    return f"{error.code.name} ({int(error.code)}{platform_code}{note})"
