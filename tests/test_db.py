import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from peewee import IntegrityError, SqliteDatabase
from playhouse.migrations import Runner

from app.config import Settings
from app.db import MIGRATIONS, database, migrate, open_database
from app.models import (
    ALL_MODELS,
    Contact,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    Organization,
    PlatformConnection,
    User,
)
from tests.fixtures import make_connection


def _schema(db) -> dict:
    return {
        table: (
            sorted(c.name for c in db.get_columns(table)),
            sorted((i.name, tuple(i.columns), i.unique) for i in db.get_indexes(table)),
        )
        for table in sorted(db.get_tables())
    }


def test_migrating_again_changes_nothing():
    with database.connection_context():
        before = _schema(database.obj)
        assert migrate() == []
        assert _schema(database.obj) == before


def test_migrations_build_every_model_table_on_a_fresh_database(tmp_path):
    fresh = SqliteDatabase(str(tmp_path / "fresh.db"))
    runner = Runner(fresh, directory=str(MIGRATIONS))
    assert runner.up() == sorted(path.stem for path in MIGRATIONS.glob("[0-9]*.py"))
    once = _schema(fresh)
    assert runner.up() == []
    assert _schema(fresh) == once
    for model in ALL_MODELS:
        columns = {field.column_name for field in model._meta.sorted_fields}
        assert set(once[model._meta.table_name][0]) == columns, model.__name__


def test_a_sqlite_url_opens_that_file_as_the_embedded_database_is_opened(tmp_path):
    settings = Settings.from_env(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path}/data/snorq.db",
            "SECRET_KEY": "x" * 40,
            "SNORQ_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        }
    )
    db = open_database(settings)
    with db.connection_context():
        pragmas = {name: db.pragma(name) for name in ("journal_mode", "busy_timeout")}
        assert pragmas == {"journal_mode": "wal", "busy_timeout": 10_000}
        assert db.pragma("foreign_keys") == 1
    assert isinstance(db, SqliteDatabase) and (tmp_path / "data" / "snorq.db").exists()


def test_snorq_migrates_and_creates_an_organization_in_a_sqlite_url_database(tmp_path):
    path = tmp_path / "x.db"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{path}",
        "SNORQ_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    env.pop("REDIS_URL", None)
    snorq = [sys.executable, "-c", "from app.cli import main; main()"]

    def run(*args: str) -> str:
        done = subprocess.run([*snorq, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert run("migrate").startswith("Applied ")
    organization_id = int(run("create-org", "Acme Ltd"))
    fresh = SqliteDatabase(str(path))
    name = fresh.execute_sql("SELECT name FROM organization WHERE id = ?", (organization_id,))
    assert name.fetchone() == ("Acme Ltd",)
    assert not (tmp_path / "instance" / "snorq.db").exists()


def test_an_account_belongs_to_one_connection(org, other_org):
    make_connection(org, "whatsapp", "555")
    with pytest.raises(IntegrityError), database.atomic():
        make_connection(other_org, "whatsapp", "555")
    assert PlatformConnection.select().count() == 1


def test_a_contact_is_unique_per_organization_and_platform(org, other_org):
    Contact.create(organization=org, platform="facebook", external_id="psid-1")
    Contact.create(organization=org, platform="tiktok", external_id="psid-1")
    Contact.create(organization=other_org, platform="facebook", external_id="psid-1")
    with pytest.raises(IntegrityError), database.atomic():
        Contact.create(organization=org, platform="facebook", external_id="psid-1")


def test_one_conversation_per_connection_and_contact(org):
    connection = make_connection(org, "facebook")
    contact = Contact.create(organization=org, platform="facebook", external_id="psid-1")
    Conversation.create(organization=org, connection=connection, contact=contact)
    with pytest.raises(IntegrityError), database.atomic():
        Conversation.create(organization=org, connection=connection, contact=contact)


def test_an_external_message_id_is_unique_per_connection(org):
    first = make_connection(org, "whatsapp", "111")
    second = make_connection(org, "whatsapp", "222")

    def message(connection, external_id):
        contact, _ = Contact.get_or_create(
            organization=org, platform="whatsapp", external_id="15550001"
        )
        conversation, _ = Conversation.get_or_create(
            organization=org, connection=connection, contact=contact
        )
        return Message.create(
            organization=org,
            connection=connection,
            conversation=conversation,
            direction=Direction.INBOUND,
            status=MessageStatus.RECEIVED,
            external_id=external_id,
        )

    message(first, "wamid.A")
    message(second, "wamid.A")
    message(first, None)
    message(first, None)
    with pytest.raises(IntegrityError), database.atomic():
        message(first, "wamid.A")


def test_a_postgresql_transaction_sends_its_begin_with_its_first_statement(org, wire):
    with database.atomic():
        Organization.update(name="Acmé").where(Organization.id == org.id).execute()
        Organization.update(name="Acmé 2").where(Organization.id == org.id).execute()
    assert [statement.split()[0] for statement in wire] == ["BEGIN;", "UPDATE", "COMMIT"]
    assert Organization.get_by_id(org.id).name == "Acmé 2"


def test_a_postgresql_transaction_that_fails_is_still_rolled_back_whole(org, wire):
    with pytest.raises(IntegrityError), database.atomic():
        Organization.update(name="Gone").where(Organization.id == org.id).execute()
        User.create(organization=org, email="a@example.com", password_hash="x")
        User.create(organization=org, email="a@example.com", password_hash="x")
    assert wire[-1] == "ROLLBACK"
    assert Organization.get_by_id(org.id).name != "Gone"
    assert not User.select().where(User.email == "a@example.com").exists()


def test_a_postgresql_transaction_that_ran_nothing_sends_nothing(wire):
    with database.atomic():
        pass
    with pytest.raises(RuntimeError), database.atomic():
        raise RuntimeError("before any statement")
    assert wire == []


def test_a_postgresql_transaction_begun_on_a_closed_connection_is_still_one(org, wire):
    database.close()
    with pytest.raises(RuntimeError), database.atomic():
        Organization.update(name="Gone").where(Organization.id == org.id).execute()
        raise RuntimeError("after the first statement")
    assert Organization.get_by_id(org.id).name != "Gone"


def test_a_statement_run_later_goes_with_the_next_one_percent_signs_and_all(org, wire):
    with database.atomic():
        database.obj.execute_later(
            "UPDATE organization SET name = %s WHERE id = %s", ("50% off", org.id)
        )
        name = Organization.select(Organization.name).where(Organization.id == org.id).scalar()
    assert name == "50% off"
    assert [statement.split()[0] for statement in wire] == ["BEGIN;", "COMMIT"]
    assert "UPDATE" in wire[0]


def test_a_statement_run_later_goes_with_the_commit_when_nothing_follows(org, wire):
    with database.atomic():
        database.obj.execute_later(
            "UPDATE organization SET name = %s WHERE id = %s", ("Acmé", org.id)
        )
    assert len(wire) == 1 and wire[0].startswith("BEGIN; UPDATE") and wire[0].endswith("COMMIT")
    assert Organization.get_by_id(org.id).name == "Acmé"


def test_a_statement_run_later_that_fails_rolls_the_transaction_back_whole(org, wire):
    User.create(organization=org, email="a@example.com", password_hash="x")
    insert = "INSERT INTO staff_user (organization_id, email, password_hash, role, available)"
    with pytest.raises(IntegrityError), database.atomic():
        Organization.update(name="Gone").where(Organization.id == org.id).execute()
        database.obj.execute_later(
            f"{insert} VALUES (%s, %s, 'x', 'staff', false)", (org.id, "a@example.com")
        )
    assert wire[-1] == "ROLLBACK"
    # The connection is usable again, and nothing of the transaction was kept.
    assert Organization.get_by_id(org.id).name != "Gone"
