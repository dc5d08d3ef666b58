"""The JSON API of assignment and conversation status (README, "Assignment and status").

The same rules as the rest of the API: everything is scoped to the caller's
organization (404 elsewhere), a session change carries the CSRF token, and the
live notices go out once the change has committed.
"""

from __future__ import annotations

import datetime

from flask import Blueprint, Flask, abort, jsonify

from app import assignment, messages
from app.db import database, utcnow
from app.labels import audit_change
from app.models import ConversationStatus, Organization, User
from app.serializers import staff_json
from app.web.access import api_login_required, current_user
from app.web.api import conversation_payload, get_conversation, is_id, json_body

bp = Blueprint("team", __name__, url_prefix="/api/v1")

#: The furthest ahead a conversation may be snoozed.
LONGEST_SNOOZE = datetime.timedelta(days=366)


@bp.post("/conversations/<int:conversation_id>/assign")
@api_login_required
def assign(conversation_id: int):
    """Hand the conversation to ``{"assignee_id": <staff id>}``, or to nobody with ``null``."""
    conversation = get_conversation(conversation_id)
    body = json_body()
    if "assignee_id" not in body:
        abort(400, description='Send {"assignee_id": <a staff member\'s id>} or null.')
    assignee_id = body["assignee_id"]
    assignee = None
    if assignee_id is not None:
        assignee = _staff().where(User.id == assignee_id).first() if is_id(assignee_id) else None
        if assignee is None:
            abort(400, description="assignee_id must be the id of a staff member of yours.")
    messages.publish(assignment.assign(current_user(), conversation, assignee))
    return jsonify(conversation=conversation_payload(conversation))


@bp.post("/conversations/<int:conversation_id>/status")
@api_login_required
def set_status(conversation_id: int):
    """Move the conversation to ``{"status": …}``; SNOOZED takes ``"snoozed_until"`` too."""
    conversation = get_conversation(conversation_id)
    body = json_body()
    status = body.get("status")
    if status not in ConversationStatus.ALL:
        known = ", ".join(ConversationStatus.ALL)
        abort(400, description=f"status must be one of {known}.")
    snoozed_until = None
    if status == ConversationStatus.SNOOZED:
        snoozed_until = _snooze_end(body.get("snoozed_until"))
    elif body.get("snoozed_until") is not None:
        abort(400, description="snoozed_until goes with the status SNOOZED only.")
    notices = assignment.set_status(current_user(), conversation, status, snoozed_until)
    messages.publish(notices)
    return jsonify(conversation=conversation_payload(conversation))


def _snooze_end(value: object) -> datetime.datetime:
    """A snooze's end: an ISO 8601 time with its offset, in the future, within a year."""
    text = value if isinstance(value, str) else ""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        abort(
            400,
            description="snoozed_until must be a time with its offset, "
            "such as 2026-12-08T09:00:00Z.",
        )
    moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    now = utcnow()
    if not now < moment <= now + LONGEST_SNOOZE:
        abort(400, description="snoozed_until must be in the future, within a year.")
    return moment


# -- the team ----------------------------------------------------------------------------


@bp.get("/staff")
@api_login_required
def list_staff():
    """The organization's staff, to assign conversations to."""
    return jsonify(staff=[staff_json(user) for user in _staff()])


@bp.patch("/staff/me")
@api_login_required
def update_me():
    """``{"available": true}``: take new conversations when they are handed out in turn."""
    user = current_user()
    available = _switch_in_body("available")
    _switch(user, User.available, available, "staff_available", f"staff {user.id}: ")
    return jsonify(staff=staff_json(user))


@bp.get("/organization")
@api_login_required
def show_organization():
    return jsonify(organization=_organization_json(_organization()))


@bp.patch("/organization")
@api_login_required
def update_organization():
    """Admins: ``{"auto_assign": true}`` hands new conversations out in turn."""
    if not current_user().is_admin:
        abort(403, description="Only an admin of the organization can change how it assigns.")
    organization = _organization()
    auto_assign = _switch_in_body("auto_assign")
    _switch(organization, Organization.auto_assign, auto_assign, "auto_assign", "")
    return jsonify(organization=_organization_json(organization))


def _switch_in_body(name: str) -> bool:
    value = json_body().get(name)
    if not isinstance(value, bool):
        abort(400, description=f'Send {{"{name}": true}} or {{"{name}": false}}.')
    return value


def _switch(row, field, value: bool, action: str, whose: str) -> None:
    """Turn ``row``'s yes/no setting ``field`` to ``value``, audited, if that changes it."""
    if getattr(row, field.name) == value:
        return
    with database.atomic():
        setattr(row, field.name, value)
        row.save(only=[field])
        audit_change(current_user(), action, f"{whose}{field.name} {value}")


def _staff():
    """The caller's organization's staff, by email."""
    return (
        User.select()
        .where(User.organization == current_user().organization_id)
        .order_by(User.email)
    )


def _organization() -> Organization:
    return Organization.get_by_id(current_user().organization_id)


def _organization_json(organization: Organization) -> dict:
    return {
        "id": organization.id,
        "name": organization.name,
        "auto_assign": organization.auto_assign,
    }


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
