"""The JSON API for staff pages and scripts (contract: ../shared/DESIGN.md, "HTTP").

Every query is scoped to the caller's organization; anything else is a 404, as
if it did not exist.
"""

from __future__ import annotations

import base64
import binascii
import datetime

from flask import Blueprint, Flask, abort, jsonify, request
from peewee import Tuple, fn
from werkzeug.exceptions import HTTPException

from app import live, messages
from app.config import get_settings
from app.db import utcnow
from app.models import Attachment, Contact, Conversation, Message, PlatformConnection
from app.serializers import connection_json, conversation_json, message_json
from app.web.access import api_login_required, current_user
from app.windows import window_open

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def _organization_id() -> int:
    return current_user().organization_id


def _limit(default: int) -> int:
    try:
        return max(1, min(int(request.args.get("limit", default)), MAX_PAGE_SIZE))
    except ValueError:
        abort(400, description="limit must be a number")


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


def _conversation_json(conversation: Conversation) -> dict:
    platform = conversation.contact.platform
    return conversation_json(conversation, conversation.contact, can_reply(conversation, platform))


@bp.get("/conversations")
@api_login_required
def list_conversations():
    activity = fn.COALESCE(Conversation.last_message_at, Conversation.created_at)
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
    if cursor := request.args.get("cursor"):
        at, last_id = _decode_cursor(cursor)
        query = query.where(Tuple(activity, Conversation.id) < Tuple(at, last_id))
    limit = _limit(PAGE_SIZE)
    page = list(query.limit(limit + 1))
    next_cursor = None
    if len(page) > limit:
        page = page[:limit]
        last = page[-1]
        next_cursor = _encode_cursor(last.last_message_at or last.created_at, last.id)
    return jsonify(conversations=[_conversation_json(c) for c in page], next_cursor=next_cursor)


@bp.get("/conversations/<int:conversation_id>")
@api_login_required
def show_conversation(conversation_id: int):
    return jsonify(conversation=_conversation_json(get_conversation(conversation_id)))


@bp.get("/conversations/<int:conversation_id>/messages")
@api_login_required
def list_messages(conversation_id: int):
    """Messages oldest first: the latest page, or the page before ``?before=<id>``."""
    conversation = get_conversation(conversation_id)
    query = Message.select().where(Message.conversation == conversation.id)
    if before := request.args.get("before", type=int):
        query = query.where(Message.id < before)
    limit = _limit(MAX_PAGE_SIZE)
    page = list(query.order_by(Message.id.desc()).limit(limit))[::-1]
    attachments: dict[int, list[Attachment]] = {}
    if page:
        for attachment in Attachment.select().where(Attachment.message.in_([m.id for m in page])):
            attachments.setdefault(attachment.message_id, []).append(attachment)
    return jsonify(messages=[message_json(m, attachments.get(m.id)) for m in page])


@bp.post("/conversations/<int:conversation_id>/read")
@api_login_required
def mark_read(conversation_id: int):
    conversation = get_conversation(conversation_id)
    messages.publish(messages.mark_conversation_read(conversation))
    return jsonify(conversation_id=conversation.id, unread_count=0)


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
