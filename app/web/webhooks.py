"""Webhook endpoints: verify the signature over the raw body, queue it, acknowledge.

Nothing here parses a payload or touches the database: a verified body goes to
the inbound queue as received, and the platform hears 200 only once it is there.
If the broker cannot take it, the platform hears 503 and delivers it again later.
"""

from __future__ import annotations

import logging
import time
import uuid

from dramatiq.errors import BrokerError
from flask import Blueprint, Flask, Response, abort, current_app, g, request
from redis import RedisError

from app.platforms import PLATFORMS
from app.web.intake import Intake
from workers.inbound import ingest_webhooks
from workers.request_ids import OPTION as REQUEST_ID

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")


def _enqueue(deliveries: list[list]) -> None:
    """One job for a group of deliveries, carrying every one's request id (the 5th item)."""
    request_ids = ",".join(dict.fromkeys(delivery[4] for delivery in deliveries))
    ingest_webhooks.send_with_options(args=(deliveries,), **{REQUEST_ID: request_ids})


intake = Intake(_enqueue)


def _platform(name: str):
    platform = PLATFORMS.get(name)
    if platform is None:
        abort(404)
    return platform


@bp.get("/<name>")
def subscribe(name: str):
    """Meta's subscription handshake: echo the challenge only for our verify token."""
    challenge = _platform(name).verify_subscription(request.args)
    if challenge is None:
        return Response("Verification failed.\n", status=403, mimetype="text/plain")
    return Response(challenge, mimetype="text/plain")


@bp.post("/<name>")
def receive(name: str):
    platform = _platform(name)
    limit = current_app.config["SNORQ_SETTINGS"].webhook_max_bytes
    # One byte over: a chunked body (no length to refuse up front) is cut off there.
    request.max_content_length = limit + 1
    body = request.get_data(cache=False)
    if len(body) > limit:
        log.warning("Refused a %s webhook: its body is over %d bytes", name, limit)
        abort(413)
    if not platform.verify_signature(body, request.headers, time.time()):
        log.warning("Refused a %s webhook: invalid or missing signature", name)
        return Response("Invalid or missing signature.\n", status=401, mimetype="text/plain")
    delivery_id = uuid.uuid4().hex
    body_text = body.decode("utf-8", "surrogateescape")
    delivery = [delivery_id, name, body_text, time.time(), g.request_id]
    try:
        intake.submit(delivery, len(body))
    except (RedisError, BrokerError, OSError) as error:
        log.error("Could not queue a %s webhook (%s); answered 503", name, type(error).__name__)
        return Response("Queue unavailable; retry later.\n", status=503, mimetype="text/plain")
    log.info("Queued a %s webhook as delivery %s (%d bytes)", name, delivery_id, len(body))
    return Response("OK\n", mimetype="text/plain")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
