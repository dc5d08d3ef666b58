"""Platform connections: connecting granted accounts, keeping their tokens, their status.

Each function that changes what staff see returns the live notices describing the
change; the caller publishes them once it has committed (see ``app.messages``).
"""

from __future__ import annotations

import datetime

from peewee import Select

from app import metrics
from app.db import database, utcnow
from app.messages import Notice
from app.models import ConnectionStatus, PlatformConnection
from app.platforms.base import Grant, TokenSet
from app.serializers import connection_json


class AccountTaken(Exception):
    """The account is already connected to another organization; it is not taken over."""


def connect(organization_id: int, platform: str, grant: Grant) -> tuple[int, list[Notice]]:
    """Store a granted account: a new connection, or the same account reconnected.

    Reconnecting replaces the tokens and makes the connection ACTIVE again.

    Returns:
      The connection id, and the notice of its new status.

    Raises:
      AccountTaken: another organization already connected this account.
    """
    with database.atomic():
        # Insert-or-ignore, then read: two exchanges of the same account never clash.
        # (A new row gets its tokens just below, in the same transaction.)
        PlatformConnection.insert(
            organization=organization_id,
            platform=platform,
            account_id=grant.account_id,
            access_token_encrypted="",
        ).on_conflict_ignore().execute()
        connection = PlatformConnection.get(
            PlatformConnection.platform == platform,
            PlatformConnection.account_id == grant.account_id,
        )
        if connection.organization_id != organization_id:
            raise AccountTaken(grant.account_id)
        connection.name = grant.name or connection.name or f"{platform} {grant.account_id}"
        connection.refresh_token_encrypted = connection.refresh_expires_at = None
        _store(connection, grant.tokens)
        connection.status, connection.status_reason = ConnectionStatus.ACTIVE, ""
        connection.save()
    return connection.id, [_status_notice(connection)]


def store_refreshed(connection: PlatformConnection, tokens: TokenSet) -> bool:
    """Replace the tokens ``connection`` was read with by refreshed ones.

    Returns:
      False (and changes nothing) when its token changed meanwhile, by a reconnect.
    """
    read_with = connection.access_token_encrypted
    _store(connection, tokens)
    updated = (
        PlatformConnection.update(
            access_token_encrypted=connection.access_token_encrypted,
            refresh_token_encrypted=connection.refresh_token_encrypted,
            token_expires_at=connection.token_expires_at,
            refresh_expires_at=connection.refresh_expires_at,
            updated_at=connection.updated_at,
        )
        .where(
            PlatformConnection.id == connection.id,
            PlatformConnection.access_token_encrypted == read_with,
        )
        .execute()
    )
    return updated == 1


def due_for_refresh(margin: datetime.timedelta) -> Select:
    """Active connections whose token should be refreshed now.

    A refreshable token is due when it expires within ``margin``; a token with no
    refresh token only once it has expired, when refreshing it tells staff to
    reconnect (refreshing it earlier would stop sends that still work).
    """
    now = utcnow()
    refreshable = PlatformConnection.refresh_token_encrypted.is_null(False)
    return PlatformConnection.select().where(
        PlatformConnection.status == ConnectionStatus.ACTIVE,
        PlatformConnection.token_expires_at.is_null(False),
        (refreshable & (PlatformConnection.token_expires_at <= now + margin))
        | (PlatformConnection.token_expires_at <= now),
    )


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
    for connection in rows:
        metrics.REAUTHORIZATIONS.labels(connection.platform).inc()
    return [_status_notice(connection) for connection in rows]


def _store(connection: PlatformConnection, tokens: TokenSet) -> None:
    """Put ``tokens`` on ``connection`` (encrypted), with their expiries."""
    now = utcnow()
    connection.set_tokens(tokens.access_token, tokens.refresh_token)
    connection.token_expires_at = _after(now, tokens.expires_in)
    if tokens.refresh_token is not None:
        connection.refresh_expires_at = _after(now, tokens.refresh_expires_in)
    connection.updated_at = now


def _after(now: datetime.datetime, seconds: int | None) -> datetime.datetime | None:
    return None if seconds is None else now + datetime.timedelta(seconds=seconds)


def _status_notice(connection: PlatformConnection) -> Notice:
    data = {"connection": connection_json(connection)}
    return Notice(connection.organization_id, "connection:status", data)
