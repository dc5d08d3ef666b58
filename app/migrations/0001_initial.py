"""The initial schema (frozen copy of app/models.py at the time; never import app models here)."""

from peewee import *


def up(migrator, db):
    class Organization(Model):
        name = CharField(max_length=200)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "organization"

    db.create_tables([Organization])

    class User(Model):
        organization = ForeignKeyField(Organization, on_delete="CASCADE")
        email = CharField(unique=True, max_length=254)
        password_hash = CharField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "staff_user"

    db.create_tables([User])

    class ApiToken(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        token_hash = CharField(unique=True, max_length=64)
        created_at = DateTimeField()
        last_used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "api_token"

    db.create_tables([ApiToken])

    class PlatformConnection(Model):
        organization = ForeignKeyField(Organization, on_delete="CASCADE")
        platform = CharField(max_length=16)
        account_id = CharField(max_length=128)
        name = CharField(max_length=200, default="")
        access_token_encrypted = TextField()
        refresh_token_encrypted = TextField(null=True)
        token_expires_at = DateTimeField(null=True)
        refresh_expires_at = DateTimeField(null=True)
        status = CharField(max_length=16, default="ACTIVE")
        status_reason = TextField(default="")
        daily_quota = IntegerField(null=True)
        burst_limit = IntegerField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "platform_connection"
            indexes = ((("platform", "account_id"), True),)

    db.create_tables([PlatformConnection])

    class Contact(Model):
        organization = ForeignKeyField(Organization, on_delete="CASCADE")
        platform = CharField(max_length=16)
        external_id = CharField(max_length=128)
        phone = CharField(null=True, max_length=32)
        username = CharField(null=True, max_length=128)
        display_name = CharField(null=True, max_length=200)
        avatar_key = CharField(null=True)
        profile_fetched_at = DateTimeField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "contact"
            indexes = (
                (("organization", "platform", "external_id"), True),
                (("organization", "platform", "phone"), False),
            )

    db.create_tables([Contact])

    class Conversation(Model):
        organization = ForeignKeyField(Organization, on_delete="CASCADE")
        connection = ForeignKeyField(PlatformConnection, on_delete="CASCADE")
        contact = ForeignKeyField(Contact, on_delete="CASCADE")
        external_thread_id = CharField(null=True, max_length=128)
        last_message_preview = CharField(max_length=100, default="")
        last_message_at = DateTimeField(null=True)
        last_inbound_at = DateTimeField(null=True)
        unread_count = IntegerField(default=0)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "conversation"
            indexes = (
                (("connection", "contact"), True),
                (("organization", "last_message_at"), False),
            )

    db.create_tables([Conversation])

    class Message(Model):
        organization = ForeignKeyField(Organization, on_delete="CASCADE")
        connection = ForeignKeyField(PlatformConnection, on_delete="CASCADE")
        conversation = ForeignKeyField(Conversation, on_delete="CASCADE")
        direction = CharField(max_length=8)
        content_type = CharField(max_length=16, default="TEXT")
        content = TextField(default="")
        payload = TextField(null=True)
        status = CharField(max_length=16)
        external_id = CharField(null=True)
        error_code = IntegerField(null=True)
        error_message = TextField(null=True)
        sent_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        idempotency_key = CharField(null=True, max_length=128)
        platform_timestamp = DateTimeField(null=True)
        created_at = DateTimeField()
        sent_at = DateTimeField(null=True)
        delivered_at = DateTimeField(null=True)
        read_at = DateTimeField(null=True)
        failed_at = DateTimeField(null=True)
        send_after = DateTimeField(null=True)
        send_lease_until = DateTimeField(null=True)
        send_attempts = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "message"
            indexes = (
                (("connection", "external_id"), True),
                (("conversation", "idempotency_key"), True),
                (("conversation", "id"), False),
                (("status", "created_at"), False),
            )

    db.create_tables([Message])

    class Attachment(Model):
        organization = ForeignKeyField(Organization, on_delete="CASCADE")
        message = ForeignKeyField(Message, on_delete="CASCADE")
        kind = CharField(max_length=16)
        platform_media_id = CharField(null=True)
        source_url = TextField(null=True)
        mime_type = CharField(null=True)
        filename = CharField(null=True)
        size = IntegerField(null=True)
        sha256 = CharField(null=True, max_length=128)
        status = CharField(max_length=16, default="PENDING")
        storage_key = CharField(null=True)
        error = TextField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "attachment"

    db.create_tables([Attachment])

    class AuditLog(Model):
        organization = ForeignKeyField(Organization, null=True, on_delete="CASCADE")
        connection = ForeignKeyField(PlatformConnection, null=True, on_delete="SET NULL")
        user = ForeignKeyField(User, null=True, on_delete="SET NULL")
        platform = CharField(max_length=16)
        action = CharField(max_length=64)
        ok = BooleanField()
        detail = TextField(default="")
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "audit_log"
            indexes = ((("organization", "created_at"), False),)

    db.create_tables([AuditLog])

    class EarlyStatus(Model):
        connection = ForeignKeyField(PlatformConnection, on_delete="CASCADE")
        external_id = CharField()
        status = CharField(max_length=16)
        occurred_at = DateTimeField()
        error_code = IntegerField(null=True)
        error_message = TextField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "early_status"
            indexes = ((("connection", "external_id", "status"), True),)

    db.create_tables([EarlyStatus])

    class WebhookEvent(Model):
        delivery_id = CharField(unique=True, max_length=64)
        platform = CharField(max_length=16)
        body = BlobField()
        received_at = DateTimeField()
        processed_at = DateTimeField(null=True)
        status = CharField(max_length=16, default="RECEIVED")
        error = TextField(null=True)

        class Meta:
            database = db
            table_name = "webhook_event"
            indexes = ((("status", "received_at"), False),)

    db.create_tables([WebhookEvent])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("webhook_event"))
    migrator.migrate(migrator.drop_table("early_status"))
    migrator.migrate(migrator.drop_table("audit_log"))
    migrator.migrate(migrator.drop_table("attachment"))
    migrator.migrate(migrator.drop_table("message"))
    migrator.migrate(migrator.drop_table("conversation"))
    migrator.migrate(migrator.drop_table("contact"))
    migrator.migrate(migrator.drop_table("platform_connection"))
    migrator.migrate(migrator.drop_table("api_token"))
    migrator.migrate(migrator.drop_table("staff_user"))
    migrator.migrate(migrator.drop_table("organization"))
