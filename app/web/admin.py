"""The admin page: what failed for good, and a button to run it again once fixed.

An organization's admins see its webhooks that were not processed (those naming
its accounts). An instance operator also sees what belongs to no organization:
unrouted and unparseable webhooks, and dead-lettered jobs. Anyone else gets
404, as does a replay of something the caller may not see.
"""

from __future__ import annotations

import functools

from flask import Blueprint, Flask, abort, flash, redirect, render_template, url_for

from app.web.access import current_user, page_login_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _admin_only(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user().is_admin:
            abort(404)
        return view(*args, **kwargs)

    return page_login_required(wrapped)


def _scope() -> int | None:
    """The organization whose webhooks the caller sees; ``None`` for an operator (all)."""
    user = current_user()
    return None if user.is_operator else user.organization_id


@bp.get("/")
@_admin_only
def index():
    from app.webhook_failures import failed_webhooks
    from workers import dead_letters
    from workers.broker import broker

    operator = current_user().is_operator
    return render_template(
        "admin.html",
        webhooks=failed_webhooks(_scope()),
        dead_letters=dead_letters.dead_letters(broker) if operator else None,
    )


@bp.post("/webhooks/<int:event_id>/replay")
@_admin_only
def replay_webhook(event_id: int):
    from app.webhook_failures import failed_webhooks, replay_webhooks

    listed = {webhook.id for webhook in failed_webhooks(_scope())}
    if event_id not in listed:
        abort(404)
    replay_webhooks([event_id])
    flash(f"Webhook event {event_id} processed again.")
    return redirect(url_for("admin.index"))


@bp.post("/jobs/<job_id>/replay")
@_admin_only
def replay_job(job_id: str):
    from workers import dead_letters
    from workers.broker import broker

    if not current_user().is_operator or not dead_letters.replay(broker, {job_id}):
        abort(404)
    flash(f"Job {job_id} queued again.")
    return redirect(url_for("admin.index"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
