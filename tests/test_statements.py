"""app/statements.py: SQL built once, values bound by name, prepared once per connection."""

import datetime

import pytest
from peewee import SQL, fn

from app.db import database, is_postgres
from app.models import Organization
from app.statements import Statement

RENAME = Statement(
    lambda param: (
        Organization.update(name=param("mark").concat(param("name")).concat(param("mark")))
        .where(Organization.id == param("id"))
        .returning(Organization.name)
    )
)

CREATED_BEFORE = Statement(
    lambda param: Organization.select(fn.COUNT(Organization.id)).where(
        Organization.created_at < param("at")
    )
)


def test_a_statement_binds_each_value_by_name_wherever_it_appears(org):
    [name] = RENAME.execute(mark="✦", name="Acmé", id=org.id).fetchone()
    assert name == "✦Acmé✦"
    assert Organization.get_by_id(org.id).name == "✦Acmé✦"


def test_a_statement_runs_again_with_new_values(org, other_org):
    RENAME.execute(mark="1", name="a", id=org.id)
    RENAME.execute(mark="2", name="b", id=other_org.id)
    assert [o.name for o in Organization.select().order_by(Organization.id)] == ["1a1", "2b2"]


def test_timestamps_compare_as_the_columns_store_them(org):
    created = Organization.get_by_id(org.id).created_at
    assert CREATED_BEFORE.execute(at=created).fetchone()[0] == 0
    assert CREATED_BEFORE.execute(at=created + datetime.timedelta(seconds=1)).fetchone()[0] == 1


def test_a_query_with_a_value_of_its_own_is_refused():
    stray = Statement(lambda param: Organization.update(name="fixed").where(SQL("1 = 1")))
    with pytest.raises(ValueError, match="every value by name"):
        stray.execute()


def test_on_postgresql_a_statement_is_prepared_once_per_connection(org):
    if not is_postgres():
        pytest.skip("prepared statements are PostgreSQL's")
    for _ in range(3):
        RENAME.execute(mark="", name="x", id=org.id)
    names = [
        row[0] for row in database.execute_sql("SELECT name FROM pg_prepared_statements").fetchall()
    ]
    assert len(names) == len(set(names)) >= 1
