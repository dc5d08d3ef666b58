"""Tokens: redeem the code of a connect attempt, and refresh tokens before they expire.

All token HTTP happens here, in workers; the web process only enqueues. A refresh
runs under a per-connection Redis lock, so a connection is refreshed once however
many senders find its token expired at the same moment: the others get the token
the first one stored. A definitive refusal marks the connection NEEDS_REAUTH, and
sends on it fail at once with TOKEN_EXPIRED until a person reconnects it.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Iterator

import dramatiq
from dramatiq import Retry
from redis.exceptions import LockNotOwnedError

from app import audit, connections, metrics
from app.config import get_settings
from app.db import database, utcnow
from app.messages import publish
from app.models import ConnectAttempt, ConnectionStatus, ConnectStatus, PlatformConnection
from app.platforms import get_platform
from app.platforms.base import Account, Grant, same_secret
from app.platforms.errors import ErrorCode, PlatformError, TemporaryError
from app.redis_client import get_redis
from workers.broker import MAINTENANCE

log = logging.getLogger(__name__)

#: Seconds a refresh may hold its lock: longer than the platform call's timeouts.
LOCK_SECONDS = 60
#: Seconds to wait for another process's refresh of the same connection.
WAIT_SECONDS = 30


# -- refresh --------------------------------------------------------------------


def refresh_access_token(connection_id: int, stale_token: str) -> str | None:
    """A working access token for a connection whose ``stale_token`` failed or expires.

    Only the first caller for a given stale token asks the platform; later callers
    get the token it stored.

    Returns:
      The new access token, or None when the platform refused for good (the
      connection is then NEEDS_REAUTH) or the connection already needs a person.

    Raises:
      TemporaryError: the platform could not answer, or another refresh of this
        connection is still running; try again later.
    """
    with _refresh_lock(connection_id):
        connection = PlatformConnection.get_or_none(PlatformConnection.id == connection_id)
        if connection is None or connection.status != ConnectionStatus.ACTIVE:
            return None
        current = connection.access_token()
        if not same_secret(current, stale_token):
            return current
        return _refresh(connection, current)


def _refresh(connection: PlatformConnection, token: str) -> str | None:
    platform = get_platform(connection.platform)
    account = Account(connection.account_id, token)
    refreshes = metrics.TOKEN_REFRESHES
    try:
        fresh = platform.refresh(account, connection.refresh_token())
    except TemporaryError as error:
        refreshes.labels(connection.platform, "retry_later").inc()
        _audit_refresh(connection, ok=False, detail=f"will retry: {audit.outcome(error)}")
        raise
    except PlatformError as error:
        refreshes.labels(connection.platform, "refused").inc()
        _audit_refresh(connection, ok=False, detail=f"needs reconnecting: {audit.outcome(error)}")
        publish(connections.mark_needs_reauth(connection.id, error.message))
        return None
    refreshes.labels(connection.platform, "refreshed").inc()
    if not connections.store_refreshed(connection, fresh):
        return PlatformConnection.get_by_id(connection.id).access_token()
    _audit_refresh(connection, ok=True, detail=_expiry(connection.token_expires_at))
    return fresh.access_token


@contextlib.contextmanager
def _refresh_lock(connection_id: int) -> Iterator[None]:
    lock = get_redis().lock(
        f"snorq:token-refresh:{connection_id}", timeout=LOCK_SECONDS, blocking_timeout=WAIT_SECONDS
    )
    if not lock.acquire():
        raise TemporaryError(
            ErrorCode.TOKEN_EXPIRED, "Another refresh of this connection's token is still running."
        )
    try:
        yield
    finally:
        # Past LOCK_SECONDS the lock expired by itself; another refresh may hold it now.
        with contextlib.suppress(LockNotOwnedError):
            lock.release()


@dramatiq.actor(queue_name=MAINTENANCE, max_retries=5)
def refresh_connection(connection_id: int) -> None:
    """The clock's refresh of one connection; nothing to do if it is no longer due."""
    margin = datetime.timedelta(seconds=get_settings().token_refresh_margin)
    due = connections.due_for_refresh(margin).where(PlatformConnection.id == connection_id)
    connection = due.first()
    if connection is None:
        return
    try:
        refresh_access_token(connection_id, connection.access_token())
    except TemporaryError as error:
        raise Retry(error.message, delay=_retry_delay(error)) from None


def enqueue_due_refreshes() -> int:
    """Enqueue a refresh of every connection whose token is due (the clock's job).

    Returns:
      How many refreshes were enqueued.
    """
    margin = datetime.timedelta(seconds=get_settings().token_refresh_margin)
    with database.connection_context():
        due = [connection.id for connection in connections.due_for_refresh(margin)]
    for connection_id in due:
        refresh_connection.send(connection_id)
    log.info("Enqueued %d token refresh(es)", len(due))
    return len(due)


# -- connect --------------------------------------------------------------------


@dramatiq.actor(queue_name=MAINTENANCE, max_retries=3, on_retry_exhausted="connect_gave_up")
def connect_account(attempt_id: int, code: str) -> None:
    """Redeem a connect attempt's code; one connection per account the platform granted."""
    attempt = ConnectAttempt.get_or_none(ConnectAttempt.id == attempt_id)
    if attempt is None or attempt.status != ConnectStatus.CONNECTING:
        return
    try:
        grants = get_platform(attempt.platform).exchange_code(code)
    except TemporaryError as error:
        _audit_exchange(attempt, ok=False, detail=f"will retry: {audit.outcome(error)}")
        raise Retry(error.message, delay=_retry_delay(error)) from None
    except PlatformError as error:
        _audit_exchange(attempt, ok=False, detail=audit.outcome(error))
        _finish(attempt.id, ConnectStatus.FAILED, error.message, [])
        return
    accounts = [_connect_one(attempt, grant) for grant in grants]
    if any(account["connection_id"] for account in accounts):
        _finish(attempt.id, ConnectStatus.CONNECTED, "", accounts)
    else:
        _finish(attempt.id, ConnectStatus.FAILED, _nothing_connected(attempt, accounts), accounts)


@dramatiq.actor(queue_name=MAINTENANCE)
def connect_gave_up(message: dict, retries: dict) -> None:
    """Every try of a connect attempt failed (its platform stayed unavailable, say)."""
    attempt_id = message["args"][0]
    title = get_platform(ConnectAttempt.get_by_id(attempt_id).platform).title
    reason = f"Connecting {title} did not finish; connect again later."
    _finish(attempt_id, ConnectStatus.FAILED, reason, [])


def _connect_one(attempt: ConnectAttempt, grant: Grant) -> dict:
    """Store one granted account; what became of it, as the attempt reports it."""
    result = {"account_id": grant.account_id, "name": grant.name, "connection_id": None}
    try:
        connection_id, notices = connections.connect(
            attempt.organization_id, attempt.platform, grant
        )
    except connections.AccountTaken:
        result["error"] = "Already connected to another organization in SNORQ; not taken over."
        detail = f"account {grant.account_id}: connected to another organization"
        _audit_exchange(attempt, ok=False, detail=detail)
        return result
    publish(notices)
    result["connection_id"] = connection_id
    _audit_exchange(
        attempt, ok=True, detail=f"account {grant.account_id}", connection_id=connection_id
    )
    return result


def _nothing_connected(attempt: ConnectAttempt, accounts: list[dict]) -> str:
    title = get_platform(attempt.platform).title
    if not accounts:
        return f"{title} granted access to no account; connect again and choose at least one."
    return "None of the granted accounts could be connected."


def _finish(attempt_id: int, status: str, reason: str, accounts: list[dict]) -> None:
    """End a connect attempt (once: a repeated job changes nothing)."""
    ConnectAttempt.update(
        status=status, reason=reason, accounts=accounts, finished_at=utcnow()
    ).where(
        ConnectAttempt.id == attempt_id, ConnectAttempt.status == ConnectStatus.CONNECTING
    ).execute()


# -- shared ---------------------------------------------------------------------


def _retry_delay(error: TemporaryError) -> int | None:
    """Milliseconds the platform asked us to wait; None lets Dramatiq back off exponentially."""
    return None if error.retry_after is None else int(error.retry_after * 1000)


def _expiry(expires_at: datetime.datetime | None) -> str:
    return "no expiry" if expires_at is None else f"expires {expires_at.isoformat()}Z"


def _audit_refresh(connection: PlatformConnection, *, ok: bool, detail: str) -> None:
    audit.record(
        "token_refresh",
        platform=connection.platform,
        ok=ok,
        detail=detail,
        organization_id=connection.organization_id,
        connection_id=connection.id,
    )


def _audit_exchange(
    attempt: ConnectAttempt, *, ok: bool, detail: str, connection_id: int | None = None
) -> None:
    audit.record(
        "token_exchange",
        platform=attempt.platform,
        ok=ok,
        detail=detail,
        organization_id=attempt.organization_id,
        connection_id=connection_id,
        user_id=attempt.user_id,
    )
