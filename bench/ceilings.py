"""The ceilings SNORQ's figures are measured against, on the same servers and settings.

- ``bare_app``: a Flask endpoint that returns 200 and does nothing else.
- ``naive_app``: the obvious webhook endpoint — verify the HMAC, send one Dramatiq
  message with the body, answer 200.
- ``noop``: a Dramatiq actor that does nothing, for the drain rate of the queue itself.

Run by gunicorn (``bench.ceilings:bare_app``) and by ``dramatiq bench.ceilings``.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from flask import Flask, request

broker = RedisBroker(url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
dramatiq.set_broker(broker)

SECRET = os.environ.get("WHATSAPP_APP_SECRET", "bench-wa-secret").encode()


@dramatiq.actor(queue_name="bench")
def noop(*args) -> None:
    """Nothing: the cost of a message is the queue's own."""


@dramatiq.actor(queue_name="bench_naive")
def store_webhook(body: str) -> None:
    """The naive endpoint's job (never run: the benchmark measures the endpoint only)."""


bare_app = Flask("bare")
naive_app = Flask("naive")


@bare_app.get("/healthz")
@naive_app.get("/healthz")
def healthz():
    return "ok"


@bare_app.post("/api/v1/webhooks/whatsapp")
def bare_webhook():
    return "", 200


@naive_app.post("/api/v1/webhooks/whatsapp")
def naive_webhook():
    body = request.get_data()
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    received = request.headers.get("X-Hub-Signature-256", "")
    if not hmac.compare_digest(expected.encode(), received.encode()):
        return "", 401
    store_webhook.send(body.decode())
    return "", 200
