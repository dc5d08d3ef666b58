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
from werkzeug.exceptions import RequestEntityTooLarge

from app import metrics
from app.platforms import PLATFORMS
from app.web.intake import Intake
from workers.broker import INBOUND
from workers.inbound import ingest_webhooks
from workers.request_ids import OPTION as REQUEST_ID

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")


def _enqueue(deliveries: list[list]) -> None:
    """Queue one group of deliveries as one job, carrying every one's request id (the 5th
    item); a failure is counted once per group."""
    request_ids = ",".join(dict.fromkeys(delivery[4] for delivery in deliveries))
    try:
        ingest_webhooks.send_with_options(args=(deliveries,), **{REQUEST_ID: request_ids})
    except Exception:
        metrics.ENQUEUE_FAILURES.labels(INBOUND).inc()
        raise


intake = Intake(_enqueue)
metrics.ENQUEUE_FAILURES.labels(INBOUND)


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
    started = time.time()
    metrics.WEBHOOKS_RECEIVED.labels(name).inc()
    try:
        body = _body()
    except RequestEntityTooLarge:
        metrics.WEBHOOKS_REFUSED.labels(name, "too_large").inc()
        log.warning("Refused a %s webhook: its body is over the size limit", name)
        raise
    if not platform.verify_signature(body, request.headers, time.time()):
        metrics.WEBHOOKS_REFUSED.labels(name, "bad_signature").inc()
        log.warning("Refused a %s webhook: invalid or missing signature", name)
        return Response("Invalid or missing signature.\n", status=401, mimetype="text/plain")
    delivery_id = uuid.uuid4().hex
    body_text = body.decode("utf-8", "surrogateescape")
    delivery = [delivery_id, name, body_text, time.time(), g.request_id]
    try:
        intake.submit(delivery, len(body))
    except (RedisError, BrokerError, OSError) as error:
        metrics.WEBHOOKS_REFUSED.labels(name, "queue_unavailable").inc()
        log.error("Could not queue a %s webhook (%s); answered 503", name, type(error).__name__)
        return Response("Queue unavailable; retry later.\n", status=503, mimetype="text/plain")
    metrics.WEBHOOKS_ACKNOWLEDGED.labels(name).inc()
    log.debug("Queued a %s webhook as delivery %s (%d bytes)", name, delivery_id, len(body))
    metrics.observe_since(metrics.WEBHOOK_ACK_SECONDS, started, name)
    return Response("OK\n", mimetype="text/plain")


def _body() -> bytes:
    """The raw body, up to the configured limit.

    Raises:
      RequestEntityTooLarge: the body is over the limit (answered 413).
    """
    limit = current_app.config["SNORQ_SETTINGS"].webhook_max_bytes
    # One byte over: a chunked body (no length to refuse up front) is cut off there.
    request.max_content_length = limit + 1
    body = request.get_data(cache=False)
    if len(body) > limit:
        abort(413)
    return body


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
