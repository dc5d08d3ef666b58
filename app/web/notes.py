"""The JSON API of private notes, labels and canned responses (README, "Notes, labels…").

The same rules as the rest of the API: everything is scoped to the caller's
organization (404 elsewhere), a session change carries the CSRF token, and the
live notices go out once the change has committed.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, abort, jsonify
from peewee import fn

from app import canned, labels, messages, notes
from app.models import CannedResponse, Label
from app.serializers import canned_response_json, label_json, note_json
from app.web.access import api_login_required, current_user
from app.web.api import (
    MAX_PAGE_SIZE,
    before_id,
    conversation_payload,
    get_conversation,
    is_id,
    json_body,
    page_limit,
)

bp = Blueprint("notes", __name__, url_prefix="/api/v1")

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_LABEL_NAME = 50


# -- private notes ---------------------------------------------------------------------


@bp.get("/conversations/<int:conversation_id>/notes")
@api_login_required
def list_notes(conversation_id: int):
    """Notes oldest first: the latest page, or the page before ``?before=<id>``."""
    conversation = get_conversation(conversation_id)
    found = notes.notes_of(conversation, limit=page_limit(MAX_PAGE_SIZE), before=before_id())
    return jsonify(notes=[note_json(note) for note in found])


@bp.post("/conversations/<int:conversation_id>/notes")
@api_login_required
def add_note(conversation_id: int):
    conversation = get_conversation(conversation_id)
    content = _text(json_body(), "content", notes.MAX_NOTE_LENGTH)
    note, notices = notes.add_note(conversation, current_user(), content)
    messages.publish(notices)
    return jsonify(note=note_json(note)), 201


# -- labels ------------------------------------------------------------------------------


@bp.get("/labels")
@api_login_required
def list_labels():
    return jsonify(labels=[label_json(label) for label in _labels()])


@bp.post("/labels")
@api_login_required
def create_label():
    _admin_only()
    body = json_body()
    name, color = _label_name(body), _color(body)
    try:
        label, notices = labels.create_label(current_user(), name, color)
    except labels.NameTaken:
        abort(409, description=f"There is a label named {name} already.")
    messages.publish(notices)
    return jsonify(label=label_json(label)), 201


@bp.patch("/labels/<int:label_id>")
@api_login_required
def update_label(label_id: int):
    _admin_only()
    label = _label(label_id)
    body = json_body()
    changes = {}
    if "name" in body:
        changes["name"] = _label_name(body)
    if "color" in body:
        changes["color"] = _color(body)
    if not changes:
        abort(400, description="Send the label's new name, color, or both.")
    try:
        notices = labels.update_label(current_user(), label, **changes)
    except labels.NameTaken:
        abort(409, description=f"There is a label named {changes['name']} already.")
    messages.publish(notices)
    return jsonify(label=label_json(label))


@bp.delete("/labels/<int:label_id>")
@api_login_required
def delete_label(label_id: int):
    _admin_only()
    messages.publish(labels.delete_label(current_user(), _label(label_id)))
    return "", 204


@bp.put("/conversations/<int:conversation_id>/labels")
@api_login_required
def set_conversation_labels(conversation_id: int):
    """Replace the conversation's labels with ``{"label_ids": [...]}`` (any staff member)."""
    conversation = get_conversation(conversation_id)
    ids = json_body().get("label_ids")
    if not isinstance(ids, list) or not all(is_id(i) for i in ids):
        abort(400, description='Send the label ids as a list, such as {"label_ids": [1, 2]}.')
    found = list(_labels().where(Label.id.in_(ids))) if ids else []
    unknown = sorted(set(ids) - {label.id for label in found})
    if unknown:
        names = ", ".join(map(str, unknown))
        abort(400, description=f"The organization has no label with id {names}.")
    notices = labels.set_labels(current_user(), conversation, found)
    messages.publish(notices)
    return jsonify(conversation=conversation_payload(conversation))


# -- canned responses --------------------------------------------------------------------


@bp.get("/canned-responses")
@api_login_required
def list_canned_responses():
    rows = (
        CannedResponse.select()
        .where(CannedResponse.organization == current_user().organization_id)
        .order_by(CannedResponse.shortcut)
    )
    return jsonify(canned_responses=[canned_response_json(c) for c in rows])


@bp.post("/canned-responses")
@api_login_required
def create_canned_response():
    body = json_body()
    shortcut, content = _shortcut(body), _text(body, "content", canned.MAX_CONTENT_LENGTH)
    try:
        created = canned.create_canned(current_user(), shortcut, content)
    except labels.NameTaken:
        abort(409, description=f"The shortcut /{shortcut} is taken already.")
    return jsonify(canned_response=canned_response_json(created)), 201


@bp.patch("/canned-responses/<int:canned_id>")
@api_login_required
def update_canned_response(canned_id: int):
    found = _canned(canned_id)
    body = json_body()
    changes = {}
    if "shortcut" in body:
        changes["shortcut"] = _shortcut(body)
    if "content" in body:
        changes["content"] = _text(body, "content", canned.MAX_CONTENT_LENGTH)
    if not changes:
        abort(400, description="Send the new shortcut, content, or both.")
    try:
        canned.update_canned(current_user(), found, **changes)
    except labels.NameTaken:
        abort(409, description=f"The shortcut /{changes['shortcut']} is taken already.")
    return jsonify(canned_response=canned_response_json(found))


@bp.delete("/canned-responses/<int:canned_id>")
@api_login_required
def delete_canned_response(canned_id: int):
    canned.delete_canned(current_user(), _canned(canned_id))
    return "", 204


# -- the caller's objects, and what a body must hold --------------------------------------


def _labels():
    """The caller's organization's labels, by name."""
    return (
        Label.select()
        .where(Label.organization == current_user().organization_id)
        .order_by(fn.LOWER(Label.name), Label.id)
    )


def _label(label_id: int) -> Label:
    label = _labels().where(Label.id == label_id).first()
    if label is None:
        abort(404)
    return label


def _canned(canned_id: int) -> CannedResponse:
    found = CannedResponse.get_or_none(
        CannedResponse.id == canned_id,
        CannedResponse.organization == current_user().organization_id,
    )
    if found is None:
        abort(404)
    return found


def _admin_only() -> None:
    if not current_user().is_admin:
        abort(403, description="Only an admin of the organization can change its labels.")


def _text(body: dict, field: str, longest: int) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        abort(400, description=f"{field} must be some text.")
    if len(value) > longest:
        abort(400, description=f"{field} is too long: at most {longest} characters.")
    return value


def _label_name(body: dict) -> str:
    return _text(body, "name", MAX_LABEL_NAME).strip()


def _color(body: dict) -> str:
    color = body.get("color")
    if not isinstance(color, str) or not COLOR.match(color):
        abort(400, description="color must be a colour such as #2f5fd0.")
    return color.lower()


def _shortcut(body: dict) -> str:
    shortcut = body.get("shortcut")
    if not isinstance(shortcut, str) or not canned.SHORTCUT.match(shortcut):
        abort(
            400,
            description="shortcut must be 1 to 32 lowercase letters, digits, - or _, "
            "starting with a letter or digit.",
        )
    return shortcut


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
