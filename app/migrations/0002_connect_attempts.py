"""Connect attempts (frozen copy of ConnectAttempt at the time; never import app models here)."""

from peewee import *


def up(migrator, db):
    class Organization(Model):
        class Meta:
            database = db
            table_name = "organization"

    class User(Model):
        class Meta:
            database = db
            table_name = "staff_user"

    class ConnectAttempt(Model):
        organization = ForeignKeyField(Organization, on_delete="CASCADE")
        user = ForeignKeyField(User, null=True, on_delete="SET NULL")
        platform = CharField(max_length=16)
        nonce = CharField(unique=True, max_length=64)
        status = CharField(max_length=16, default="CONNECTING")
        reason = TextField(default="")
        accounts = TextField(null=True)
        created_at = DateTimeField()
        finished_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "connect_attempt"

    db.create_tables([ConnectAttempt])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("connect_attempt"))
