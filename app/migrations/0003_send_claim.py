"""Which job attempt holds a send's claim, so the same job's retry may take it again."""

from peewee import CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("message", "send_claim", CharField(max_length=64, null=True))
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_column("message", "send_claim"))
