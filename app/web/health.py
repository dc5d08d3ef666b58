"""``/healthz`` (the process answers) and ``/readyz`` (each dependency, checked on its own).

``/readyz`` answers 200 only when the database, the broker and live events all
answer, else 503; its JSON names each one's state (``"ok"`` or what is wrong), so
a load balancer and a person read the same page.
"""

from __future__ import annotations

import redis
from flask import Blueprint, Flask, jsonify
from peewee import PeeweeException

from app import live
from app.db import database
from app.redis_client import get_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = {
        "database": _check_database(),
        "broker": _check_broker(),
        "live_events": _check_live_events(),
    }
    ready = all(result == "ok" for result in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503


def _check_database() -> str:
    try:
        database.execute_sql("SELECT 1")
    except (PeeweeException, OSError) as error:
        return f"unreachable ({type(error).__name__})"
    return "ok"


def _check_broker() -> str:
    try:
        get_redis().ping()
    except (redis.RedisError, OSError) as error:
        return f"unreachable ({type(error).__name__})"
    return "ok"


def _check_live_events() -> str:
    """Events can be published, and this process's subscription (once made) is up."""
    if live.hub.started and not live.hub.listening:
        return "unavailable (subscription lost; reconnecting)"
    try:
        live.ping()
    except (redis.RedisError, OSError) as error:
        return f"unreachable ({type(error).__name__})"
    return "ok"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
