"""The peewee models: organizations, staff, platform connections and conversations.

The schema itself is created by the versioned migrations in ``app/migrations``;
these classes describe it to the code. Every timestamp is naive UTC.
"""

from __future__ import annotations

import json

from peewee import (
    AutoField,
    BlobField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
    fn,
)

from app import crypto
from app.db import database, utcnow


class JSONField(TextField):
    """A JSON document stored as text (the same on SQLite and PostgreSQL)."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class Organization(BaseModel):
    id = AutoField()
    name = CharField(max_length=200)
    #: New conversations go to the available staff member longest without one.
    auto_assign = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)


class Role:
    """What a staff member may do beyond the inbox (README, "When something goes wrong")."""

    STAFF = "STAFF"
    #: Also sees and replays the organization's webhooks that were not processed.
    ADMIN = "ADMIN"
    #: Runs the instance: also sees unrouted webhooks and dead-lettered jobs, of everyone.
    OPERATOR = "OPERATOR"

    ALL = (STAFF, ADMIN, OPERATOR)


class User(BaseModel):
    """A staff member; belongs to exactly one organization."""

    id = AutoField()
    organization = ForeignKeyField(Organization, backref="users", on_delete="CASCADE")
    email = CharField(max_length=254, unique=True)
    password_hash = CharField(max_length=255)
    role = CharField(max_length=16, default=Role.STAFF)
    #: Takes new conversations when the organization assigns them automatically.
    available = BooleanField(default=False)
    last_assigned_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "staff_user"

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.ADMIN, Role.OPERATOR)

    @property
    def is_operator(self) -> bool:
        return self.role == Role.OPERATOR


class ApiToken(BaseModel):
    """A bearer token for scripts; only its SHA-256 digest is stored."""

    id = AutoField()
    user = ForeignKeyField(User, backref="api_tokens", on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)


class ConnectionStatus:
    ACTIVE = "ACTIVE"
    NEEDS_REAUTH = "NEEDS_REAUTH"


class PlatformConnection(BaseModel):
    """One WhatsApp phone number, Facebook Page or TikTok business account.

    ``account_id`` is the id the platform puts in its webhooks (phone-number id,
    Page id, TikTok business id), so it routes every webhook to its organization.
    Tokens are stored encrypted; read them with :meth:`access_token`.
    """

    id = AutoField()
    organization = ForeignKeyField(Organization, backref="connections", on_delete="CASCADE")
    platform = CharField(max_length=16)
    account_id = CharField(max_length=128)
    name = CharField(max_length=200, default="")
    access_token_encrypted = TextField()
    refresh_token_encrypted = TextField(null=True)
    token_expires_at = DateTimeField(null=True)
    refresh_expires_at = DateTimeField(null=True)
    status = CharField(max_length=16, default=ConnectionStatus.ACTIVE)
    status_reason = TextField(default="")
    daily_quota = IntegerField(null=True)
    burst_limit = IntegerField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("platform", "account_id"), True),
            (("status", "token_expires_at"), False),
        )

    def access_token(self) -> str:
        return crypto.decrypt(self.access_token_encrypted)

    def refresh_token(self) -> str | None:
        if self.refresh_token_encrypted is None:
            return None
        return crypto.decrypt(self.refresh_token_encrypted)

    def set_tokens(self, access_token: str, refresh_token: str | None = None) -> None:
        self.access_token_encrypted = crypto.encrypt(access_token)
        if refresh_token is not None:
            self.refresh_token_encrypted = crypto.encrypt(refresh_token)


class Contact(BaseModel):
    """A customer on one platform. WhatsApp keys on the BSUID when there is one."""

    id = AutoField()
    organization = ForeignKeyField(Organization, backref="contacts", on_delete="CASCADE")
    platform = CharField(max_length=16)
    external_id = CharField(max_length=128)
    phone = CharField(max_length=32, null=True)
    username = CharField(max_length=128, null=True)
    display_name = CharField(max_length=200, null=True)
    avatar_key = CharField(max_length=255, null=True)
    profile_fetched_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("organization", "platform", "external_id"), True),
            (("organization", "platform", "phone"), False),
        )


class ConversationStatus:
    """Where a conversation stands (README, "Assignment and status")."""

    OPEN = "OPEN"
    #: Waiting for the customer's answer.
    PENDING = "PENDING"
    #: Put away until ``snoozed_until``; the clock opens it again then.
    SNOOZED = "SNOOZED"
    RESOLVED = "RESOLVED"

    ALL = (OPEN, PENDING, SNOOZED, RESOLVED)
    #: What a new message from the customer opens again.
    REOPENED_BY_CUSTOMER = (PENDING, SNOOZED, RESOLVED)


class Conversation(BaseModel):
    """The one thread between a connection and a contact."""

    id = AutoField()
    # Both served by wider indexes that lead with them (migration 0010).
    organization = ForeignKeyField(
        Organization, backref="conversations", on_delete="CASCADE", index=False
    )
    connection = ForeignKeyField(
        PlatformConnection, backref="conversations", on_delete="CASCADE", index=False
    )
    contact = ForeignKeyField(Contact, backref="conversations", on_delete="CASCADE")
    external_thread_id = CharField(max_length=128, null=True)
    last_message_preview = CharField(max_length=100, default="")
    last_message_at = DateTimeField(null=True)
    last_inbound_at = DateTimeField(null=True)
    unread_count = IntegerField(default=0)
    status = CharField(max_length=16, default=ConversationStatus.OPEN)
    snoozed_until = DateTimeField(null=True)
    status_changed_at = DateTimeField(null=True)
    # Served by conversation_organization_assignee below.
    assignee = ForeignKeyField(User, null=True, on_delete="SET NULL", index=False)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("connection", "contact"), True),)


#: The order of the conversation list (a conversation may have no message yet).
ACTIVITY = fn.COALESCE(Conversation.last_message_at, Conversation.created_at)
# Each page of the list, however deep its cursor, and of its unread filter, is one
# index range read in order (migration 0004).
Conversation.add_index(
    Conversation.index(
        Conversation.organization,
        ACTIVITY,
        Conversation.id,
        name="conversation_organization_activity",
    )
)
Conversation.add_index(
    Conversation.index(
        Conversation.organization,
        ACTIVITY,
        Conversation.id,
        name="conversation_organization_unread",
    ).where(Conversation.unread_count > 0)
)
# The list by status, or by assignee, in the same order (migration 0008).
Conversation.add_index(
    Conversation.index(
        Conversation.organization,
        Conversation.status,
        ACTIVITY,
        Conversation.id,
        name="conversation_organization_status",
    )
)
Conversation.add_index(
    Conversation.index(
        Conversation.organization,
        Conversation.assignee,
        ACTIVITY,
        Conversation.id,
        name="conversation_organization_assignee",
    )
)
Conversation.add_index(
    Conversation.index(Conversation.snoozed_until, name="conversation_snoozed_until").where(
        Conversation.status == ConversationStatus.SNOOZED
    )
)


class Direction:
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class MessageStatus:
    PENDING = "PENDING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    FAILED = "FAILED"
    RECEIVED = "RECEIVED"

    #: Forward order of an outbound message's status; FAILED is terminal.
    ORDER = {PENDING: 0, SENT: 1, DELIVERED: 2, READ: 3}


class ContentType:
    TEXT = "TEXT"
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"
    DOCUMENT = "DOCUMENT"
    STICKER = "STICKER"
    LOCATION = "LOCATION"
    CONTACTS = "CONTACTS"
    INTERACTIVE = "INTERACTIVE"
    REACTION = "REACTION"
    TEMPLATE = "TEMPLATE"
    POSTBACK = "POSTBACK"
    SHARE = "SHARE"
    SYSTEM = "SYSTEM"
    UNSUPPORTED = "UNSUPPORTED"


class Message(BaseModel):
    """One message in a conversation, inbound or outbound.

    An external id is unique per connection, so a platform's retry of a webhook
    can never store a message twice. Each status has its own timestamp.
    """

    id = AutoField()
    # Served by (organization, id) below, which search reads newest first (migration 0009).
    organization = ForeignKeyField(Organization, on_delete="CASCADE", index=False)
    # Served by (connection, external_id) and (conversation, id) below (migration 0010).
    connection = ForeignKeyField(PlatformConnection, on_delete="CASCADE", index=False)
    conversation = ForeignKeyField(
        Conversation, backref="messages", on_delete="CASCADE", index=False
    )
    direction = CharField(max_length=8)
    content_type = CharField(max_length=16, default=ContentType.TEXT)
    content = TextField(default="")
    payload = JSONField(null=True)
    status = CharField(max_length=16)
    external_id = CharField(max_length=255, null=True)
    error_code = IntegerField(null=True)
    error_message = TextField(null=True)
    # Indexed below where set: a customer's message has no author.
    sent_by = ForeignKeyField(User, null=True, on_delete="SET NULL", index=False)
    idempotency_key = CharField(max_length=128, null=True)
    platform_timestamp = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)
    delivered_at = DateTimeField(null=True)
    read_at = DateTimeField(null=True)
    failed_at = DateTimeField(null=True)
    send_after = DateTimeField(null=True)
    send_lease_until = DateTimeField(null=True)
    send_attempts = IntegerField(default=0)

    class Meta:
        indexes = (
            (("connection", "external_id"), True),
            (("conversation", "id"), False),
            (("status", "created_at"), False),
            (("organization", "id"), False),
        )


# Only the rows that have a value (migration 0010): a staff author, an idempotency key.
Message.add_index(
    Message.index(Message.sent_by, name="message_sent_by_id").where(Message.sent_by.is_null(False))
)
Message.add_index(
    Message.index(
        Message.conversation,
        Message.idempotency_key,
        unique=True,
        name="message_conversation_id_idempotency_key",
    ).where(Message.idempotency_key.is_null(False))
)


class AttachmentStatus:
    PENDING = "PENDING"
    AVAILABLE = "AVAILABLE"
    FAILED = "FAILED"


class Attachment(BaseModel):
    """A media file of a message: fetched from the platform, then kept in storage."""

    id = AutoField()
    organization = ForeignKeyField(Organization, on_delete="CASCADE")
    message = ForeignKeyField(Message, backref="attachments", on_delete="CASCADE")
    kind = CharField(max_length=16)
    platform_media_id = CharField(max_length=255, null=True)
    source_url = TextField(null=True)
    mime_type = CharField(max_length=255, null=True)
    filename = CharField(max_length=255, null=True)
    size = IntegerField(null=True)
    sha256 = CharField(max_length=128, null=True)
    status = CharField(max_length=16, default=AttachmentStatus.PENDING)
    storage_key = CharField(max_length=255, null=True)
    error = TextField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("status", "updated_at"), False),)


def attachments_by_message(message_ids: list[int]) -> dict[int, list[Attachment]]:
    """The attachments of each of these messages, by message id (one query)."""
    found: dict[int, list[Attachment]] = {}
    if message_ids:
        for attachment in Attachment.select().where(Attachment.message.in_(message_ids)):
            found.setdefault(attachment.message_id, []).append(attachment)
    return found


class Note(BaseModel):
    """A staff member's private note in a conversation's thread.

    Not a message: no platform, send worker or sweep ever reads this table, and a
    note moves neither the conversation's preview nor its unread count.
    """

    id = AutoField()
    organization = ForeignKeyField(Organization, on_delete="CASCADE")
    conversation = ForeignKeyField(Conversation, backref="notes", on_delete="CASCADE", index=False)
    author = ForeignKeyField(User, null=True, on_delete="SET NULL")
    content = TextField()
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("conversation", "id"), False),)


class Label(BaseModel):
    """A coloured tag an organization's admins define for its conversations.

    Names are unique per organization whatever their case (migration 0007).
    """

    id = AutoField()
    organization = ForeignKeyField(Organization, backref="labels", on_delete="CASCADE", index=False)
    name = CharField(max_length=50)
    #: ``#rrggbb``
    color = CharField(max_length=7)
    created_at = DateTimeField(default=utcnow)


Label.add_index(
    Label.index(
        Label.organization, fn.LOWER(Label.name), unique=True, name="label_organization_name"
    )
)


class ConversationLabel(BaseModel):
    """A label on a conversation."""

    id = AutoField()
    # Both served by the indexes below, which lead with them.
    conversation = ForeignKeyField(Conversation, on_delete="CASCADE", index=False)
    label = ForeignKeyField(Label, on_delete="CASCADE", index=False)

    class Meta:
        indexes = (
            (("conversation", "label"), True),
            # The list filtered by a label starts from that label's conversations.
            (("label", "conversation"), False),
        )


def labels_by_conversation(conversation_ids: list[int]) -> dict[int, list[Label]]:
    """The labels on each of these conversations, by name, by conversation id (one query)."""
    found: dict[int, list[Label]] = {}
    if conversation_ids:
        rows = (
            ConversationLabel.select(ConversationLabel, Label)
            .join(Label)
            .where(ConversationLabel.conversation.in_(conversation_ids))
            .order_by(fn.LOWER(Label.name), Label.id)
        )
        for row in rows:
            found.setdefault(row.conversation_id, []).append(row.label)
    return found


class CannedResponse(BaseModel):
    """A saved answer staff insert in the composer by typing ``/`` and its shortcut."""

    id = AutoField()
    organization = ForeignKeyField(Organization, on_delete="CASCADE", index=False)
    shortcut = CharField(max_length=32)
    content = TextField()
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("organization", "shortcut"), True),)


class EarlyStatus(BaseModel):
    """A status webhook for an outbound message whose external id is not known yet.

    Kept until the send records its external id, then applied in order.
    """

    id = AutoField()
    connection = ForeignKeyField(PlatformConnection, on_delete="CASCADE")
    external_id = CharField(max_length=255)
    status = CharField(max_length=16)
    occurred_at = DateTimeField()
    error_code = IntegerField(null=True)
    error_message = TextField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("connection", "external_id", "status"), True),)


class WebhookStatus:
    RECEIVED = "RECEIVED"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"


class WebhookEvent(BaseModel):
    """A webhook body exactly as the platform sent it, kept for audit and replay."""

    id = AutoField()
    delivery_id = CharField(max_length=64, unique=True)
    platform = CharField(max_length=16)
    body = BlobField()
    received_at = DateTimeField()
    processed_at = DateTimeField(null=True)
    status = CharField(max_length=16, default=WebhookStatus.RECEIVED)
    error = TextField(null=True)

    class Meta:
        indexes = ((("status", "received_at"), False),)


class AuditLog(BaseModel):
    """Every platform interaction: who, what, and the outcome (never a token or body)."""

    id = AutoField()
    organization = ForeignKeyField(Organization, null=True, on_delete="CASCADE")
    connection = ForeignKeyField(PlatformConnection, null=True, on_delete="SET NULL")
    user = ForeignKeyField(User, null=True, on_delete="SET NULL")
    platform = CharField(max_length=16)
    action = CharField(max_length=64)
    ok = BooleanField()
    detail = TextField(default="")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("organization", "created_at"), False),
            (("created_at",), False),
        )


class ConnectStatus:
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    FAILED = "FAILED"


class ConnectAttempt(BaseModel):
    """One run of the connect flow, from the platform's callback to the end of its exchange.

    ``nonce`` comes from the signed OAuth state and is unique, so a callback link
    connects once. ``accounts`` says what became of each account the platform granted.
    """

    id = AutoField()
    organization = ForeignKeyField(Organization, on_delete="CASCADE")
    user = ForeignKeyField(User, null=True, on_delete="SET NULL")
    platform = CharField(max_length=16)
    nonce = CharField(max_length=64, unique=True)
    status = CharField(max_length=16, default=ConnectStatus.CONNECTING)
    reason = TextField(default="")
    accounts = JSONField(null=True)
    created_at = DateTimeField(default=utcnow)
    finished_at = DateTimeField(null=True)


ALL_MODELS = [
    Organization,
    User,
    ApiToken,
    PlatformConnection,
    Contact,
    Conversation,
    Message,
    Attachment,
    EarlyStatus,
    WebhookEvent,
    AuditLog,
    ConnectAttempt,
    Note,
    Label,
    ConversationLabel,
    CannedResponse,
]
