"""Private notes, labels on conversations, canned responses (issue 15).

Frozen copies of the models at the time; never import app models here. A label's
name is unique per organization whatever its case: an index on LOWER(name), the
same SQL on SQLite and PostgreSQL. The list filtered by a label reads that
label's conversations through ``conversation_label (label_id, conversation_id)``.
A foreign key that leads one of these composite indexes gets no index of its own.
"""

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

    class Conversation(Model):
        class Meta:
            database = db
            table_name = "conversation"

    class Note(Model):
        organization = ForeignKeyField(Organization, on_delete="CASCADE")
        conversation = ForeignKeyField(Conversation, on_delete="CASCADE", index=False)
        author = ForeignKeyField(User, null=True, on_delete="SET NULL")
        content = TextField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "note"
            indexes = ((("conversation", "id"), False),)

    class Label(Model):
        organization = ForeignKeyField(Organization, on_delete="CASCADE", index=False)
        name = CharField(max_length=50)
        color = CharField(max_length=7)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "label"

    class ConversationLabel(Model):
        conversation = ForeignKeyField(Conversation, on_delete="CASCADE", index=False)
        label = ForeignKeyField(Label, on_delete="CASCADE", index=False)

        class Meta:
            database = db
            table_name = "conversation_label"
            indexes = (
                (("conversation", "label"), True),
                (("label", "conversation"), False),
            )

    class CannedResponse(Model):
        organization = ForeignKeyField(Organization, on_delete="CASCADE", index=False)
        shortcut = CharField(max_length=32)
        content = TextField()
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "canned_response"
            indexes = ((("organization", "shortcut"), True),)

    db.create_tables([Note, Label, ConversationLabel, CannedResponse])
    db.execute_sql(
        "CREATE UNIQUE INDEX label_organization_name ON label (organization_id, LOWER(name))"
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_table("canned_response"))
    migrator.migrate(migrator.drop_table("conversation_label"))
    migrator.migrate(migrator.drop_table("label"))
    migrator.migrate(migrator.drop_table("note"))
