"""``/metrics``: the web processes' Prometheus metrics, and the queues' and connections' state.

Only a scraper holding ``Authorization: Bearer <SNORQ_METRICS_TOKEN>`` gets them
(another answer is 401). With no token set the page does not exist (404): metrics
are off until an operator turns them on. Under gunicorn any web process answers
for all of them (``app/web/gunicorn_hooks.py``); in the embedded mode the one
process reports its worker's metrics too.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from app import metrics
from workers.broker import QUEUES, broker

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape():
    token = current_app.config["SNORQ_SETTINGS"].metrics_token
    if not token:
        abort(404)
    if not metrics.authorized(request.headers.get("Authorization", ""), token):
        return Response(
            "Bearer token required.\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    queues = metrics.QueueCollector(broker.client, broker.namespace, QUEUES)
    body = metrics.render(queues, metrics.ConnectionCollector())
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
