"""``GET /api/v1/search``: the caller's organization's messages and conversations by words."""

from __future__ import annotations

from flask import Blueprint, Flask, abort, jsonify, request

from app import search
from app.models import attachments_by_message, labels_by_conversation
from app.serializers import contact_json, message_json
from app.web.access import api_login_required, current_user
from app.web.api import before_id, conversation_payload, page_limit

bp = Blueprint("search", __name__, url_prefix="/api/v1")

PAGE_SIZE, MAX_PAGE_SIZE = 20, 50


@bp.get("/search")
@api_login_required
def search_organization():
    """Messages newest first (the page before ``?before=<id>``), and on the first page the
    conversations whose contact matches."""
    try:
        found = search.search(
            current_user().organization_id,
            request.args.get("q", ""),
            limit=page_limit(PAGE_SIZE, MAX_PAGE_SIZE),
            before=before_id(),
        )
    except ValueError as error:
        abort(400, description=str(error))
    attachments = attachments_by_message([m.id for m in found.messages])
    labels = labels_by_conversation([c.id for c in found.conversations])
    return jsonify(
        messages=[_message(m, attachments.get(m.id)) for m in found.messages],
        conversations=[conversation_payload(c, labels.get(c.id, [])) for c in found.conversations],
        next_before=found.next_before,
    )


def _message(message, attachments) -> dict:
    contact = message.conversation.contact
    return {
        **message_json(message, attachments),
        "contact": contact_json(contact),
        "platform": contact.platform,
    }


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
