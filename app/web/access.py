"""Who is asking: the staff session or an API token, and CSRF for the session.

A request is authenticated by ``Authorization: Bearer <token>`` (scripts) or by
the signed session cookie (the inbox page). Session requests that change state
must carry the session's CSRF token (form field or ``X-CSRF-Token`` header);
bearer requests need none, since a browser never adds that header by itself.
"""

from __future__ import annotations

import functools
import secrets

from flask import abort, g, jsonify, redirect, request, session, url_for

from app.auth import user_for_token
from app.models import User
from app.platforms.base import same_secret

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def current_user() -> User | None:
    """The signed-in staff member for this request (cached on ``g``)."""
    if "user" not in g:
        g.user = _bearer_user() or _session_user()
    return g.user


def _bearer_user() -> User | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    g.authenticated_by = "token"
    return user_for_token(header.removeprefix("Bearer ").strip())


def _session_user() -> User | None:
    user_id = session.get("user_id")
    if user_id is None:
        return None
    g.authenticated_by = "session"
    return User.get_or_none(User.id == user_id)


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok() -> bool:
    expected = session.get("csrf")
    received = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    return bool(expected) and same_secret(expected, received)


def _check_csrf() -> None:
    from_session = g.get("authenticated_by") == "session"
    if request.method not in SAFE_METHODS and from_session and not csrf_ok():
        abort(403, description="Missing or invalid CSRF token.")


def api_login_required(view):
    """For JSON endpoints: 401 without credentials, 403 on a bad CSRF token."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            return jsonify(error="authentication required"), 401
        _check_csrf()
        return view(*args, **kwargs)

    return wrapped


def page_login_required(view):
    """For pages: redirect to the sign-in page without a session."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            return redirect(url_for("inbox.login", next=request.full_path.rstrip("?")))
        _check_csrf()
        return view(*args, **kwargs)

    return wrapped
