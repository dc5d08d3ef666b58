"""The Dramatiq broker every SNORQ process shares, set up when this module is imported.

Dramatiq needs its broker before any actor is declared, so this is the one module
whose import has side effects: it binds the database proxy (no connection yet)
and sets a Redis broker on the process's Redis client (``REDIS_URL``, or the
in-process store of the embedded mode).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, Middleware

from app.config import get_settings
from app.db import database, init_database
from app.logs import install_redaction
from app.redis_client import get_redis

#: Separate queues so bulk work never starves ingest.
INBOUND, OUTBOUND, MEDIA, MAINTENANCE = "inbound", "outbound", "media", "maintenance"
QUEUES = (INBOUND, OUTBOUND, MEDIA, MAINTENANCE)

#: A worker silent for this long is dead; its unacknowledged messages go back
#: to their queue at the next maintenance pass (Dramatiq's default is 60 s, and
#: maintenance is rare by default; together they took minutes).
HEARTBEAT_TIMEOUT_MS = 15_000
#: Out of a million broker commands, how many run that maintenance pass.
MAINTENANCE_CHANCE = 50_000

#: The seed's retry policy: exponential backoff from 1 s, capped at 30 s.
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 30_000


class DatabaseConnection(Middleware):
    """Each job runs inside its own database connection (returned to the pool after)."""

    def before_process_message(self, broker, message):
        database.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        database.close()

    after_skip_message = after_process_message


def make_broker() -> RedisBroker:
    broker = RedisBroker(
        client=get_redis(),
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
    )
    for middleware in broker.middleware:
        if isinstance(middleware, dramatiq.middleware.Retries):
            middleware.min_backoff = MIN_BACKOFF_MS
            middleware.max_backoff = MAX_BACKOFF_MS
            middleware.max_retries = 3
    broker.add_middleware(DatabaseConnection())
    # Actors read their own message (the send actor: how often it was retried).
    broker.add_middleware(CurrentMessage())
    for queue_name in QUEUES:
        broker.declare_queue(queue_name)
    return broker


install_redaction()
init_database(get_settings())
broker = make_broker()
dramatiq.set_broker(broker)
