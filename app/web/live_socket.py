"""(filled in by its issue)"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("live_socket", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
