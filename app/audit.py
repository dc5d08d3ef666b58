"""The audit log: every platform interaction, who asked for it and how it ended.

Entries name the action and its outcome in words; they never hold a token, a
secret or a message body (callers pass ids and error codes, not content).
"""

from __future__ import annotations

from app.db import utcnow
from app.models import AuditLog
from app.platforms.errors import PlatformError
from app.statements import Statement


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
    """Append one entry (e.g. ``send``, ``token_exchange``, ``token_refresh``).

    In a transaction, the entry goes to the server with its next statement or COMMIT.
    """
    _RECORD.execute_later(
        action=action,
        platform=platform,
        ok=ok,
        detail=detail,
        organization_id=organization_id,
        connection_id=connection_id,
        user_id=user_id,
        created_at=utcnow(),
    )


#: Every platform call writes one, so its SQL is built once (``app/statements.py``).
_RECORD = Statement(
    lambda param: AuditLog.insert(
        {
            field: param(field.column_name)
            for field in AuditLog._meta.sorted_fields
            if field is not AuditLog.id
        }
    )
)


def outcome(error: PlatformError) -> str:
    """The detail of a failed platform call: SNORQ's code and the platform's, never its words.

    A platform's text may quote what it was sent, so it stays out of the audit log.
    """
    platform_code = "" if error.platform_code is None else f", platform code {error.platform_code}"
    note = ", may have been delivered" if getattr(error, "maybe_delivered", False) else ""
    return f"{error.code.name} ({int(error.code)}{platform_code}{note})"
