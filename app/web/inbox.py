"""The staff pages: sign-in and sign-out, the inbox, the connections page.

Pages are server-rendered shells; their scripts (``static/``) read and change
everything through the JSON API and follow ``/ws``. Each page carries a strict
Content-Security-Policy, so only SNORQ's own scripts ever run on it.
"""

from __future__ import annotations

import functools

from flask import Blueprint, Flask, redirect, render_template, request, session, url_for

from app import live
from app.auth import check_password, hash_password
from app.models import User
from app.web import throttle
from app.web.access import csrf_ok, csrf_token, current_user, page_login_required

bp = Blueprint("inbox", __name__)

SIGN_IN_FAILED = "That email and password do not match an account."
FORM_EXPIRED = "The sign-in form expired. Please try again."


@bp.get("/")
@page_login_required
def index():
    return render_template("inbox.html", since=live.latest_seq(current_user().organization_id))


@bp.get("/connections")
@page_login_required
def connections():
    return render_template(
        "connections.html", since=live.latest_seq(current_user().organization_id)
    )


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user() is not None:
            return redirect(target)
        return _login_form(target)
    if not csrf_ok():
        return _login_form(target, FORM_EXPIRED, 400)
    email = request.form.get("email", "").strip().lower()
    address = request.remote_addr or "unknown"
    wait = throttle.attempt(email, address)
    if wait:
        minutes = -(-wait // 60)
        message = f"Too many sign-in attempts. Try again in {minutes} minute(s)."
        return _login_form(target, message, 429, email=email)
    user = _authenticate(email, request.form.get("password", ""))
    if user is None:
        return _login_form(target, SIGN_IN_FAILED, 401, email=email)
    throttle.succeeded(email, address)
    # A fresh session on sign-in: nothing set before it (a planted CSRF token or
    # session id) survives into the signed-in session.
    session.clear()
    session["user_id"] = user.id
    return redirect(target)


@bp.post("/logout")
@page_login_required
def logout():
    session.clear()
    return redirect(url_for("inbox.login"))


def _authenticate(email: str, password: str) -> User | None:
    """The user these credentials belong to; as slow for an unknown email as for a known one."""
    user = User.get_or_none(User.email == email)
    if user is None:
        check_password(User(password_hash=_dummy_hash()), password)
        return None
    return user if check_password(user, password) else None


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a password anyone has")


def _login_form(target: str, error: str | None = None, status: int = 200, email: str = ""):
    html = render_template("login.html", next=target, error=error, email=email)
    return html, status


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (``//evil``, ``/\\evil``, ``https:``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("inbox.index")
    return target


@bp.app_context_processor
def _template_context() -> dict:
    return {"staff": current_user(), "csrf_token": csrf_token}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
