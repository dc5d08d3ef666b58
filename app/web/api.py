"""The JSON API for staff pages and scripts (contract: ../shared/DESIGN.md, "HTTP").

Every query is scoped to the caller's organization; anything else is a 404, as
if it did not exist.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import logging

import dramatiq
from dramatiq.errors import BrokerError
from flask import Blueprint, Flask, Response, abort, jsonify, request
from redis import RedisError
from werkzeug.exceptions import HTTPException
from werkzeug.http import quote_etag
from werkzeug.wsgi import wrap_file

from app import attachments, live, media_types, messages, presence
from app.config import get_settings
from app.db import utcnow
from app.models import (
    ACTIVITY,
    Attachment,
    AttachmentStatus,
    Contact,
    ContentType,
    Conversation,
    ConversationLabel,
    ConversationStatus,
    Direction,
    Label,
    Message,
    PlatformConnection,
    attachments_by_message,
    labels_by_conversation,
)
from app.platforms import get_platform
from app.platforms.errors import PermanentError
from app.platforms.parsing import labelled
from app.serializers import (
    connection_json,
    conversation_json,
    message_json,
    timestamp,
)
from app.storage import MissingFile, get_storage
from app.web.access import api_login_required, current_user
from app.windows import window_closes_at, window_open
from workers.outbound import send_message, send_read_receipt, send_typing

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
#: What a reply may carry besides its text (each platform takes its own).
REPLY_EXTRAS = ("template", "quick_replies")
MAX_KEY_LENGTH = 128
#: Ids are 64-bit on PostgreSQL and SQLite.
LARGEST_ID = 2**63 - 1
#: Room for a file reply's form fields and multipart framing, beyond the file itself.
FORM_OVERHEAD = 64 * 1024
#: The message content type of a reply carrying a file of each kind.
FILE_CONTENT_TYPES = {
    "image": ContentType.IMAGE,
    "video": ContentType.VIDEO,
    "audio": ContentType.AUDIO,
    "document": ContentType.DOCUMENT,
}
#: The type of a contact's picture, by the extension SNORQ gave its key.
AVATAR_TYPES = {media_types.EXTENSIONS[t]: t for t in media_types.IMAGE_TYPES}


def _organization_id() -> int:
    return current_user().organization_id


def page_limit(default: int, most: int = MAX_PAGE_SIZE) -> int:
    """``?limit=``: how many rows a page holds, from 1 to ``most``."""
    try:
        return max(1, min(int(request.args.get("limit", default)), most))
    except ValueError:
        abort(400, description="limit must be a number")


def before_id() -> int | None:
    """``?before=<id>``: the page before that row, or None for the latest page."""
    before = request.args.get("before", type=int)
    if before is not None and not 0 < before <= LARGEST_ID:
        abort(400, description="before must be the id of a row you were shown.")
    return before


def json_body() -> dict:
    """The request's JSON object, or a 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="Send a JSON object.")
    return body


def is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def can_reply(conversation: Conversation, platform: str) -> bool:
    """Whether free text may be sent now (WhatsApp outside its window takes templates)."""
    return window_open(
        platform,
        conversation.last_inbound_at,
        utcnow(),
        human_agent=get_settings().messenger_human_agent,
    )


def get_conversation(conversation_id: int) -> Conversation:
    """The caller's conversation (with its contact and connection), or 404."""
    conversation = (
        Conversation.select(Conversation, Contact, PlatformConnection)
        .join(Contact)
        .switch(Conversation)
        .join(PlatformConnection)
        .where(
            Conversation.id == conversation_id,
            Conversation.organization == _organization_id(),
        )
        .first()
    )
    if conversation is None:
        abort(404)
    return conversation


def conversation_payload(conversation: Conversation, labels: list[Label] | None = None) -> dict:
    """A conversation as the API shows it; its labels are looked up unless given."""
    if labels is None:
        labels = labels_by_conversation([conversation.id]).get(conversation.id, [])
    platform = conversation.contact.platform
    reply = can_reply(conversation, platform)
    data = conversation_json(conversation, conversation.contact, reply, labels)
    # The inbox page counts the messaging window down from this.
    data["window_closes_at"] = timestamp(
        window_closes_at(
            platform,
            conversation.last_inbound_at,
            human_agent=get_settings().messenger_human_agent,
        )
    )
    return data


@bp.get("/conversations")
@api_login_required
def list_conversations():
    activity = ACTIVITY
    query = (
        Conversation.select(Conversation, Contact)
        .join(Contact)
        .where(Conversation.organization == _organization_id())
        .order_by(activity.desc(), Conversation.id.desc())
    )
    if platform := request.args.get("platform"):
        query = query.where(Contact.platform == platform)
    if request.args.get("unread") in {"1", "true"}:
        query = query.where(Conversation.unread_count > 0)
    if label := request.args.get("label"):
        query = _with_label(query, label)
    if statuses := request.args.get("status"):
        query = query.where(Conversation.status.in_(_statuses(statuses)))
    if assignee := request.args.get("assignee"):
        query = query.where(_assigned_to(assignee))
    if cursor := request.args.get("cursor"):
        at, last_id = _decode_cursor(cursor)
        # (activity, id) < (at, last_id), written so that SQLite too reads it as a
        # range of the list's index (migration 0004): a deep page costs what the first does.
        query = query.where((activity <= at) & ((activity < at) | (Conversation.id < last_id)))
    limit = page_limit(PAGE_SIZE)
    page = list(query.limit(limit + 1))
    next_cursor = None
    if len(page) > limit:
        page = page[:limit]
        last = page[-1]
        next_cursor = _encode_cursor(last.last_message_at or last.created_at, last.id)
    labels = labels_by_conversation([c.id for c in page])
    found = [conversation_payload(c, labels.get(c.id, [])) for c in page]
    return jsonify(conversations=found, next_cursor=next_cursor)


def _with_label(query, label: str):
    """Only the conversations carrying label ``label``, read from that label's side."""
    if not label.isdigit():
        abort(400, description="label must be a label id")
    on = ConversationLabel.conversation == Conversation.id
    return (
        query.switch(Conversation)
        .join(ConversationLabel, on=on)
        .where(ConversationLabel.label == int(label))
    )


def _statuses(text: str) -> list[str]:
    """The statuses of ``?status=OPEN,PENDING``."""
    statuses = [status.strip().upper() for status in text.split(",")]
    unknown = [status for status in statuses if status not in ConversationStatus.ALL]
    if unknown:
        known = ", ".join(ConversationStatus.ALL)
        abort(400, description=f"status must be one or more of {known}, separated by commas.")
    return statuses


def _assigned_to(assignee: str):
    """``?assignee=me``, ``none`` or a staff member's id."""
    if assignee == "me":
        return Conversation.assignee == current_user().id
    if assignee == "none":
        return Conversation.assignee.is_null()
    if not assignee.isdigit():
        abort(400, description="assignee must be me, none or a staff member's id.")
    return Conversation.assignee == int(assignee)


@bp.get("/conversations/<int:conversation_id>")
@api_login_required
def show_conversation(conversation_id: int):
    return jsonify(conversation=conversation_payload(get_conversation(conversation_id)))


@bp.get("/conversations/<int:conversation_id>/messages")
@api_login_required
def list_messages(conversation_id: int):
    """Messages oldest first: the latest page, or the page before ``?before=<id>``."""
    conversation = get_conversation(conversation_id)
    query = Message.select().where(Message.conversation == conversation.id)
    if before := before_id():
        query = query.where(Message.id < before)
    limit = page_limit(MAX_PAGE_SIZE)
    page = list(query.order_by(Message.id.desc()).limit(limit))[::-1]
    attachments = attachments_by_message([m.id for m in page])
    return jsonify(messages=[message_json(m, attachments.get(m.id)) for m in page])


@bp.post("/conversations/<int:conversation_id>/read")
@api_login_required
def mark_read(conversation_id: int):
    conversation = get_conversation(conversation_id)
    had_unread = conversation.unread_count > 0
    messages.publish(messages.mark_conversation_read(conversation))
    if had_unread and get_platform(conversation.connection.platform).read_receipts:
        _enqueue(send_read_receipt, conversation.id)
    return jsonify(conversation_id=conversation.id, unread_count=0)


# -- sending replies (README, "Sending replies"): the web process only stores and queues --


@bp.post("/conversations/<int:conversation_id>/messages")
@api_login_required
def send_reply(conversation_id: int):
    """Store a staff reply as PENDING and queue its send: 202 with the message."""
    conversation = get_conversation(conversation_id)
    if request.mimetype == "multipart/form-data":
        return _send_file_reply(conversation)
    content, extras, idempotency_key = _reply_fields(request.get_json(silent=True))
    try:
        extras = get_platform(conversation.connection.platform).validate_reply(content, extras)
    except PermanentError as error:
        abort(400, description=error.message)
    template = extras.get("template")
    message, notices = messages.create_outbound(
        conversation,
        user_id=current_user().id,
        content=content or f"Template {template['name']} ({template['language']})",
        content_type=ContentType.TEMPLATE if template else ContentType.TEXT,
        options=extras or None,
        idempotency_key=idempotency_key,
    )
    messages.publish(notices)
    if notices:
        _enqueue(send_message, message.id)
    return jsonify(message=message_json(message)), 202


def _reply_fields(body: object) -> tuple[str, dict, str | None]:
    """``(content, extras, idempotency_key)`` from a reply's JSON body, or a 400."""
    if not isinstance(body, dict):
        abort(400, description='Send a JSON object such as {"content": "Hello"}.')
    content, key = body.get("content", ""), body.get("idempotency_key")
    if not isinstance(content, str):
        abort(400, description="content must be a string.")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH):
        abort(400, description=f"idempotency_key must be text of 1 to {MAX_KEY_LENGTH} characters.")
    extras = {name: body[name] for name in REPLY_EXTRAS if name in body}
    return content, extras, key


def _send_file_reply(conversation: Conversation):
    """A reply carrying a file (README, "Media"): multipart ``file``, with an optional
    ``content`` (its caption, where the platform takes one) and ``idempotency_key``."""
    request.max_content_length = get_settings().media_max_bytes + FORM_OVERHEAD
    file = request.files.get("file")
    if file is None:
        abort(400, description='Attach the file as the form field "file".')
    caption, _, idempotency_key = _reply_fields(request.form.to_dict())
    try:
        upload = attachments.receive(
            conversation.organization_id,
            file.stream,
            declared_type=file.mimetype,
            filename=file.filename,
            platform=get_platform(conversation.connection.platform),
            caption=caption,
        )
    except PermanentError as error:
        abort(400, description=error.message)
    message, stored, notices = messages.create_media_outbound(
        conversation,
        user_id=current_user().id,
        content=caption or labelled(upload.kind, upload.filename),
        content_type=FILE_CONTENT_TYPES[upload.kind],
        options={"caption": caption} if caption else None,
        idempotency_key=idempotency_key,
        attachment=upload.fields(),
    )
    messages.publish(notices)
    if notices:
        _enqueue(send_message, message.id)
    else:
        # The key was used before: the file of that first request is the one that goes.
        get_storage().delete(upload.storage_key)
    return jsonify(message=message_json(message, stored)), 202


@bp.post("/messages/<int:message_id>/retry")
@api_login_required
def retry_message(message_id: int):
    """Send a FAILED reply again (a new attempt, queued): 202 with the message."""
    message = Message.get_or_none(
        Message.id == message_id, Message.organization == _organization_id()
    )
    if message is None:
        abort(404)
    outbound = message.direction == Direction.OUTBOUND
    notices = messages.retry_failed(message) if outbound else []
    if not notices:
        abort(409, description="Only a failed reply can be sent again.")
    messages.publish(notices)
    _enqueue(send_message, message.id)
    return jsonify(message=notices[0].data["message"]), 202


@bp.post("/conversations/<int:conversation_id>/typing")
@api_login_required
def typing(conversation_id: int):
    """Show the customer staff are typing: 202 when queued, 204 where the platform has none."""
    conversation = get_conversation(conversation_id)
    if not get_platform(conversation.connection.platform).typing_indicator:
        return "", 204
    _enqueue(send_typing, conversation.id)
    return jsonify(conversation_id=conversation.id, typing=True), 202


def _enqueue(actor: dramatiq.Actor, *args) -> None:
    """Queue a job, or log that the broker is down.

    A reply is stored already: the sweep queues it again once the broker is back. A
    read receipt or typing indicator is only dropped.
    """
    try:
        actor.send(*args)
    except (RedisError, BrokerError) as error:
        log.warning("Could not queue %s (%s)", actor.actor_name, type(error).__name__)


# -- media: files in messages and contacts' pictures (README, "Media") ----------------


@bp.get("/attachments/<int:attachment_id>")
@api_login_required
def download_attachment(attachment_id: int):
    """A message's file, for its organization only, as a type the browser will not run."""
    attachment = Attachment.get_or_none(
        Attachment.id == attachment_id,
        Attachment.organization == _organization_id(),
        Attachment.status == AttachmentStatus.AVAILABLE,
    )
    if attachment is None or attachment.storage_key is None:
        abort(404)
    name = attachment.filename or media_types.file_name(None, attachment.kind, attachment.mime_type)
    return _stored_file(
        attachment.storage_key, attachment.mime_type, name, attachment.sha256, attachment.size
    )


@bp.get("/contacts/<int:contact_id>/avatar")
@api_login_required
def contact_avatar(contact_id: int):
    """A contact's picture, as SNORQ kept it (the platforms' own links expire)."""
    contact = Contact.get_or_none(
        Contact.id == contact_id, Contact.organization == _organization_id()
    )
    if contact is None or contact.avatar_key is None:
        abort(404)
    extension = "." + contact.avatar_key.rsplit(".", 1)[-1]
    mime_type = AVATAR_TYPES.get(extension, media_types.OCTET_STREAM)
    return _stored_file(contact.avatar_key, mime_type, f"avatar{extension}", contact.avatar_key)


def _stored_file(key: str, mime_type: str, filename: str, etag: str, size: int | None = None):
    """A file from storage, served so that a browser never runs it.

    Only types that cannot hold script are ``inline``; any other is a download.
    ``nosniff`` keeps the browser to the stored type, and the sandboxing CSP covers a
    file opened on its own.
    """
    headers = {
        "Content-Disposition": media_types.content_disposition(mime_type, filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": "private, no-cache",
        "ETag": quote_etag(etag),
    }
    if request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    try:
        file = get_storage().open(key)
    except MissingFile:
        abort(404)
    if size is not None:
        headers["Content-Length"] = str(size)
    body = wrap_file(request.environ, file)
    return Response(body, mimetype=mime_type, headers=headers, direct_passthrough=True)


@bp.get("/connections")
@api_login_required
def list_connections():
    rows = (
        PlatformConnection.select()
        .where(PlatformConnection.organization == _organization_id())
        .order_by(PlatformConnection.platform, PlatformConnection.id)
    )
    return jsonify(connections=[connection_json(c) for c in rows])


@bp.get("/events")
@api_login_required
def list_events():
    since = request.args.get("since", default=0, type=int)
    events, complete = live.events_since(_organization_id(), since)
    return jsonify(events=events, latest=live.latest_seq(_organization_id()), complete=complete)


@bp.get("/conversations/<int:conversation_id>/presence")
@api_login_required
def conversation_presence(conversation_id: int):
    """The other staff members viewing or typing in the conversation now (README, "Who else
    is here"); never the caller."""
    conversation = get_conversation(conversation_id)
    try:
        here = presence.present(_organization_id(), conversation.id, excluding=current_user().id)
    except RedisError:
        abort(503, description="Presence is unavailable right now; try again shortly.")
    return jsonify(presence=here)


def _encode_cursor(at: datetime.datetime, conversation_id: int) -> str:
    raw = f"{at.isoformat()}|{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, conversation_id = raw.split("|")
        return datetime.datetime.fromisoformat(at), int(conversation_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        abort(400, description="invalid cursor")


def _json_error(error: HTTPException):
    if not request.path.startswith("/api/"):
        return error
    return jsonify(error=error.description or error.name), error.code


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _json_error)
