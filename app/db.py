"""The database: one peewee proxy bound at run time, and the migration runner.

SQLite (embedded default, or a ``sqlite:///`` ``DATABASE_URL``) and PostgreSQL
(a ``postgresql://`` one) get the same schema from the same migrations. On SQLite
every ``database.atomic()`` begins with ``BEGIN IMMEDIATE``, so a writer takes its
lock up front instead of failing half-way when another thread writes too. On
PostgreSQL a transaction's BEGIN travels with its first statement, and a statement
whose result nobody reads (``execute_later``) with the next one or the COMMIT
(:class:`PostgresDatabase`): fewer round trips to the server.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from peewee import (
    Database,
    DatabaseProxy,
    PostgresqlDatabase,
    SqliteDatabase,
    __exception_wrapper__,
)
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
    """Pooled connections that send what needs no answer of its own with what follows it.

    peewee sends BEGIN, and each statement, as a message of its own and waits for
    its answer; on a short transaction (a webhook's two statements) those waits
    are most of its time. Here a transaction's BEGIN, and any statement run with
    :meth:`execute_later` (one whose result nobody reads), are held back and sent
    in front of the transaction's next statement, or of its COMMIT, in the same
    message to the server. An error in one surfaces there, and the transaction
    rolls back whole as before. A transaction that ran nothing sends nothing.
    """

    def begin(self, isolation_level=None) -> None:
        if self.is_closed():
            # Connect now, as sending BEGIN would: connecting later forgets the transaction.
            self.connect()
        level = isolation_level or self._isolation_level
        begin = "BEGIN"
        if level:
            begin += f" TRANSACTION ISOLATION LEVEL {self._adapter.isolation_level_str(level)}"
        self._state.held = [begin]
        self._state.begun = False

    def execute_later(self, sql: str, params=None) -> None:
        """Run a statement whose result is not needed, with the transaction's next one.

        Outside a transaction it runs at once.
        """
        if not self.in_transaction():
            self.execute_sql(sql, params)
            return
        self._held().append(self.cursor().mogrify(sql, params).decode())

    def execute_sql(self, sql, params=None):
        held = self._take_held()
        if held and self.in_transaction():
            self._state.begun = True
            # The held statements are literal SQL now: their % signs are not placeholders.
            sql = "; ".join([*(text.replace("%", "%%") for text in held), sql])
        return super().execute_sql(sql, params)

    def commit(self) -> None:
        held = self._take_held()
        if not self._state.begun and len(held) <= 1:
            return  # BEGIN at most: the server never saw this transaction.
        # Begun until it commits: should the COMMIT (or a held statement) fail, ROLLBACK follows.
        self._state.begun = True
        if held:
            with __exception_wrapper__:
                self.cursor().execute("; ".join([*held, "COMMIT"]))
        else:
            super().commit()
        self._state.begun = False

    def rollback(self) -> None:
        self._take_held()
        begun, self._state.begun = self._state.begun, False
        if begun:
            super().rollback()

    def _held(self) -> list[str]:
        if not hasattr(self._state, "held"):
            self._state.held, self._state.begun = [], False
        return self._state.held

    def _take_held(self) -> list[str]:
        held = self._held()
        self._state.held = []
        return held


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
