"""SNORQ: a unified inbox for WhatsApp Business, Facebook Messenger and TikTok."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from app.config import Settings, get_settings

if TYPE_CHECKING:
    from flask import Flask


def create_app(settings: Settings | None = None) -> Flask:
    """The web process: webhooks, the staff API and inbox, the live websocket.

    Flask is imported here, not with the package: the workers and the clock import
    ``app`` too, and have no use for it.
    """
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from app.db import database, init_database
    from app.logs import install_redaction
    from app.web import (
        admin,
        api,
        health,
        inbox,
        live_socket,
        metrics,
        notes,
        oauth,
        request_ids,
        search,
        security,
        team,
        webhooks,
    )

    settings = settings or get_settings()
    install_redaction()
    init_database(settings)

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(hours=12),
        # No request body is larger than the largest file staff may attach (413 above).
        MAX_CONTENT_LENGTH=settings.media_max_bytes + (1 << 20),
        SNORQ_SETTINGS=settings,
    )

    @app.teardown_request
    def close_database(_exception=None):
        if not database.is_closed():
            database.close()

    for module in (
        request_ids,
        security,
        health,
        metrics,
        webhooks,
        api,
        notes,
        team,
        search,
        oauth,
        inbox,
        admin,
        live_socket,
    ):
        module.init_app(app)
    if settings.proxy_count:
        # Behind a load balancer: the client's address and scheme come from its headers.
        count = settings.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    return app
