"""Connecting accounts: send staff to the platform, take its callback, hand over the code.

The web process never calls a platform. The callback checks the signed state,
records a connect attempt and enqueues the code exchange (``workers/tokens.py``);
the attempt's page follows the worker through a small JSON endpoint.
"""

from __future__ import annotations

from dramatiq.errors import BrokerError
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from peewee import IntegrityError
from redis import RedisError

from app import oauth_state
from app.db import database
from app.models import ConnectAttempt
from app.platforms import PLATFORMS
from app.platforms.base import Platform
from app.serializers import timestamp
from app.web.access import api_login_required, current_user, page_login_required
from workers.tokens import connect_account

bp = Blueprint("oauth", __name__)


def _platform(name: str) -> Platform:
    platform = PLATFORMS.get(name)
    if platform is None:
        abort(404)
    return platform


@bp.get("/api/v1/platforms/connect/<name>")
@page_login_required
def connect(name: str):
    """Send the signed-in staff member to the platform's authorize page."""
    platform = _platform(name)
    if not platform.can_connect():
        message = (
            f"SNORQ has no {platform.title} app credentials yet: an administrator must "
            'set them (README, "Connecting accounts").'
        )
        return _refused(platform, message, 503)
    user = current_user()
    state = oauth_state.sign(
        current_app.config["SECRET_KEY"],
        organization_id=user.organization_id,
        user_id=user.id,
        platform=name,
    )
    return redirect(platform.authorize_url(state))


@bp.get("/api/v1/platforms/callback/<name>")
@page_login_required
def callback(name: str):
    """Check the state, then queue the code exchange and show the attempt."""
    platform = _platform(name)
    try:
        state = oauth_state.verify(
            current_app.config["SECRET_KEY"], request.args.get("state"), name
        )
    except oauth_state.StateError as error:
        return _refused(platform, str(error), 400)
    user = current_user()
    if (state.organization_id, state.user_id) != (user.organization_id, user.id):
        message = "Another staff member started this connection; connect from your own session."
        return _refused(platform, message, 403)
    code = request.args.get("code")
    if "error" in request.args or not code:
        return _refused(platform, _platform_refusal(platform), 400)
    attempt = _start_attempt(state)
    if attempt is None:
        return _refused(platform, "This link was already used; connect again to start over.", 409)
    try:
        connect_account.send(attempt.id, code)
    except (RedisError, BrokerError, OSError):
        # Forget the attempt, so reloading the page can still use this link.
        attempt.delete_instance()
        return _refused(platform, "SNORQ could not queue the connection; reload to retry.", 503)
    return redirect(url_for("oauth.attempt_page", attempt_id=attempt.id), code=303)


@bp.get("/connections/attempts/<int:attempt_id>")
@page_login_required
def attempt_page(attempt_id: int):
    attempt = _attempt(attempt_id)
    title = _platform(attempt.platform).title
    return render_template("oauth_attempt.html", attempt=_attempt_json(attempt), title=title)


@bp.get("/api/v1/platforms/connect-attempts/<int:attempt_id>")
@api_login_required
def attempt_status(attempt_id: int):
    return jsonify(attempt=_attempt_json(_attempt(attempt_id)))


def _start_attempt(state: oauth_state.State) -> ConnectAttempt | None:
    """The attempt for this state, or None if its state was used before."""
    try:
        with database.atomic():
            return ConnectAttempt.create(
                organization=state.organization_id,
                user=state.user_id,
                platform=state.platform,
                nonce=state.nonce,
            )
    except IntegrityError:
        return None


def _attempt(attempt_id: int) -> ConnectAttempt:
    """The caller's organization's attempt, or 404."""
    attempt = ConnectAttempt.get_or_none(
        ConnectAttempt.id == attempt_id,
        ConnectAttempt.organization == current_user().organization_id,
    )
    if attempt is None:
        abort(404)
    return attempt


def _attempt_json(attempt: ConnectAttempt) -> dict:
    return {
        "id": attempt.id,
        "platform": attempt.platform,
        "status": attempt.status,
        "reason": attempt.reason,
        "accounts": attempt.accounts or [],
        "created_at": timestamp(attempt.created_at),
        "finished_at": timestamp(attempt.finished_at),
    }


def _platform_refusal(platform: Platform) -> str:
    """What the platform said when it sent staff back without a code."""
    said = request.args.get("error_description") or request.args.get("error")
    if said:
        return f"{platform.title} did not grant access: {said}"
    return f"{platform.title} sent no authorization code; connect again."


def _refused(platform: Platform, message: str, status: int):
    return render_template("oauth_refused.html", title=platform.title, message=message), status


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
