"""The database: one peewee proxy bound at run time, and the migration runner.

SQLite (embedded default, or a ``sqlite:///`` ``DATABASE_URL``) and PostgreSQL
(a ``postgresql://`` one) get the same schema from the same migrations. On SQLite
every ``database.atomic()`` begins with ``BEGIN IMMEDIATE``, so a writer takes its
lock up front instead of failing half-way when another thread writes too. On
PostgreSQL a transaction's BEGIN travels with its first statement
(:class:`PostgresDatabase`).
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from peewee import Database, DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase

from app.config import Settings

log = logging.getLogger(__name__)

database = DatabaseProxy()

MIGRATIONS = Path(__file__).with_name("migrations")

#: Any number works; it only has to be the same in every `snorq migrate`.
_MIGRATION_LOCK = 734_211_903


def utcnow() -> datetime.datetime:
    """The current time in UTC, naive, as every timestamp column stores it."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def open_database(settings: Settings, *, max_connections: int = 32) -> Database:
    """A database for the settings' URL (SQLite under ``instance/`` by default)."""
    path = settings.sqlite_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteDatabase(
            str(path),
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": 10_000,
                "foreign_keys": 1,
                "synchronous": "normal",
            },
            lock_type="IMMEDIATE",
            returning_clause=True,
        )
    params = parse(settings.database_url)
    return PostgresDatabase(
        params.pop("database"), max_connections=max_connections, stale_timeout=300, **params
    )


class PostgresDatabase(PooledPostgresqlDatabase):
    """Pooled connections whose transactions save the round trip of their own BEGIN.

    peewee sends BEGIN as a statement of its own, and on a short transaction (a
    webhook's three statements) that wait is a fifth of the whole. Here BEGIN is
    held back and sent in front of the transaction's first statement, in the same
    message to the server; a transaction that ran nothing sends neither BEGIN nor
    its COMMIT or ROLLBACK.
    """

    def begin(self, isolation_level=None) -> None:
        if self.is_closed():
            # Connect now, as sending BEGIN would: connecting later forgets the transaction.
            self.connect()
        level = isolation_level or self._isolation_level
        self._state.pending_begin = (
            f"BEGIN TRANSACTION ISOLATION LEVEL {self._adapter.isolation_level_str(level)}"
            if level
            else "BEGIN"
        )

    def execute_sql(self, sql, params=None):
        begin = self._take_pending_begin()
        if begin and self.in_transaction():
            sql = f"{begin}; {sql}"
        return super().execute_sql(sql, params)

    def commit(self) -> None:
        if self._take_pending_begin() is None:
            super().commit()

    def rollback(self) -> None:
        if self._take_pending_begin() is None:
            super().rollback()

    def _take_pending_begin(self) -> str | None:
        begin = getattr(self._state, "pending_begin", None)
        self._state.pending_begin = None
        return begin


def init_database(settings: Settings) -> Database:
    """Bind the proxy to the configured database (no connection is opened yet)."""
    if database.obj is None:
        database.initialize(open_database(settings))
    return database.obj


def is_postgres() -> bool:
    return isinstance(database.obj, PostgresqlDatabase)


def migrate() -> list[str]:
    """Apply pending migrations; safe to run from several processes at once.

    Returns:
      The names of the migrations applied by this call.
    """
    # Imported here: only `snorq migrate` (and the embedded mode) runs migrations.
    from playhouse.migrations import Runner

    db = database.obj
    with database.connection_context():
        if is_postgres():
            db.execute_sql("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            applied = Runner(db, directory=str(MIGRATIONS)).up()
        finally:
            if is_postgres():
                db.execute_sql("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    for name in applied:
        log.info("Applied migration %s", name)
    return applied
