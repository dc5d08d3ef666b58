"""Statements whose SQL is built once, for the paths that run the same query for every message.

peewee builds a query's SQL anew each time it runs, and for a short INSERT or
UPDATE that costs more CPU than the database spends running it. A
:class:`Statement` has peewee build it once, and on PostgreSQL also prepares it
once per connection, so each run only sends its values: the server skips
parsing and planning too.
"""

from __future__ import annotations

import functools
import itertools
import threading
import weakref
from collections.abc import Callable

from peewee import SQL, Database, Field, Model, PostgresqlDatabase, Query

from app.db import PostgresDatabase, database

Param = Callable[[str], SQL]

_names = itertools.count(1)


class Statement:
    """A query written by ``build(param)``, with ``param(name)`` for each value it takes.

    Parameters:
      build: Returns the query; every value in it comes from ``param``.
    """

    def __init__(self, build: Callable[[Param], Query]) -> None:
        self._build = build
        self._name = f"snorq_{next(_names)}"
        self._built: dict[Database, tuple[str, list[str]]] = {}
        self._lock = threading.Lock()
        self._prepared_on: weakref.WeakSet = weakref.WeakSet()

    def execute(self, **values):
        """Run the statement; ``values`` are as the columns store them (``Field.db_value``).

        Returns:
          The driver's cursor, holding any RETURNING rows.
        """
        return database.execute_sql(*self._call(values))

    def execute_later(self, **values) -> None:
        """Run the statement, whose result nobody reads, with the transaction's next one.

        On PostgreSQL it travels with the next statement or the COMMIT, saving a round
        trip (:class:`app.db.PostgresDatabase`); elsewhere it runs at once.
        """
        if isinstance(database.obj, PostgresDatabase):
            database.obj.execute_later(*self._call(values))
        else:
            database.execute_sql(*self._call(values))

    def _call(self, values: dict) -> tuple[str, object]:
        """The SQL and values that run the statement on this connection."""
        db = database.obj
        sql, names = self._built.get(db) or self._build_for(db)
        if not isinstance(db, PostgresqlDatabase):
            return sql, values
        connection = database.connection()
        if connection not in self._prepared_on:
            # Prepared statements belong to the session and outlive any transaction.
            database.execute_sql(f"PREPARE {self._name} AS {sql}")
            with self._lock:
                self._prepared_on.add(connection)
        arguments = ", ".join(["%s"] * len(names))
        return f"EXECUTE {self._name}({arguments})", [values[name] for name in names]

    def _build_for(self, db: Database) -> tuple[str, list[str]]:
        """The SQL, with ``$n`` (PostgreSQL) or ``:name`` (SQLite) for each value."""
        names: list[str] = []

        def param(name: str) -> SQL:
            if isinstance(db, PostgresqlDatabase):
                if name not in names:
                    names.append(name)
                return SQL(f"${names.index(name) + 1}")
            return SQL(f":{name}")

        sql, params = db.get_sql_context().parse(self._build(param))
        if params:
            raise ValueError("a Statement's query must take every value by name")
        with self._lock:
            self._built[db] = (sql, names)
        return sql, names


def columns(*models: type[Model]) -> list[Field]:
    """Every column of ``models``, in order: what a statement selects to rebuild them."""
    return [field for model in models for field in model._meta.sorted_fields]


def instances(row, *models: type[Model]) -> list[Model]:
    """One instance of each of ``models`` from a row of their :func:`columns`.

    Values are read as the fields read them (timestamps, JSON, foreign keys), as
    peewee's own selects do, and nothing is marked changed; the values go straight
    into the instance's data, at half the CPU of setting each field.
    """
    values = iter(row)
    built = []
    for model in models:
        instance = model(__no_default__=1)
        instance.__data__ = {name: read(next(values)) for name, read in _readers(model)}
        built.append(instance)
    return built


@functools.cache
def _readers(model: type[Model]) -> list[tuple[str, Callable]]:
    return [(field.name, field.python_value) for field in model._meta.sorted_fields]
