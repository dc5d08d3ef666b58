"""SNORQ's Prometheus metrics: what each process counts, and the scrape that reports it.

Every process counts into prometheus_client's registry, where the event happens.
gunicorn and ``dramatiq workers`` run several processes each: with
``PROMETHEUS_MULTIPROC_DIR`` set (the Procfile sets it), every process keeps its
values in files there and a scrape adds them up (prometheus_client's multiprocess
mode). The embedded mode is one process and reports from memory.

What lives in Redis and the database — queue depths, dead letters, connections
waiting for a person — is read when ``/metrics`` is scraped (:class:`QueueCollector`,
:class:`ConnectionCollector`), so it shows even while no worker runs.

Label values are bounded: platform, queue, actor, reason, outcome and error-code
names. Never an id, a token or a message's text.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator

import redis
from peewee import PeeweeException, fn
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from app.config import PLATFORMS
from app.models import PlatformConnection
from app.platforms.base import same_secret

log = logging.getLogger(__name__)

#: Seconds, from a few milliseconds (a quick acknowledgement) to half an hour (a backlog).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)

# -- web: webhooks and the live page ----------------------------------------------------

WEBHOOKS_RECEIVED = Counter(
    "snorq_webhooks_received", "Webhook POSTs received, per platform.", ["platform"]
)
WEBHOOKS_ACKNOWLEDGED = Counter(
    "snorq_webhooks_acknowledged", "Webhooks answered 200 once queued.", ["platform"]
)
WEBHOOKS_REFUSED = Counter(
    "snorq_webhooks_refused",
    "Webhooks refused: too_large (413), bad_signature (401), queue_unavailable (503).",
    ["platform", "reason"],
)
WEBHOOK_ACK_SECONDS = Histogram(
    "snorq_webhook_ack_seconds",
    "From reading a webhook to acknowledging it (200), queueing included.",
    ["platform"],
    buckets=_LATENCY_BUCKETS,
)
ENQUEUE_FAILURES = Counter(
    "snorq_enqueue_failures", "Jobs the web process could not put on a queue.", ["queue"]
)
LIVE_CONNECTIONS = Gauge(
    "snorq_live_connections",
    "Staff pages connected to /ws.",
    multiprocess_mode="livesum",
)

# -- workers ----------------------------------------------------------------------------

INGEST_LAG_SECONDS = Histogram(
    "snorq_ingest_lag_seconds",
    "From a webhook's arrival at the web process to its events being committed.",
    ["platform"],
    buckets=_LATENCY_BUCKETS,
)
SENDS = Counter(
    "snorq_sends",
    "Reply send attempts by outcome (sent, retried, failed, unconfirmed) and error code.",
    ["platform", "outcome", "code"],
)
RATE_LIMIT_WAIT_SECONDS = Histogram(
    "snorq_rate_limit_wait_seconds",
    "Waits for a rate-limit token (reply, read_receipt); _count is the number of waits.",
    ["platform", "call"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 21600, 86400),
)
TOKEN_REFRESHES = Counter(
    "snorq_token_refreshes",
    "Token refreshes asked of a platform, by outcome (refreshed, retry_later, refused).",
    ["platform", "outcome"],
)
REAUTHORIZATIONS = Counter(
    "snorq_reauthorizations_needed",
    "Connections marked NEEDS_REAUTH: a person must reconnect them.",
    ["platform"],
)
JOBS = Counter(
    "snorq_jobs",
    "Jobs a worker ran, by outcome (done, error, skipped).",
    ["queue", "actor", "outcome"],
)
JOBS_DEAD_LETTERED = Counter(
    "snorq_jobs_dead_lettered", "Jobs a worker gave up on (dead-lettered).", ["queue", "actor"]
)
WEBHOOKS_UNPROCESSED = Counter(
    "snorq_webhooks_unprocessed",
    "Webhooks stored without their events: unknown_account, parse_error.",
    ["platform", "reason"],
)
PLATFORM_NOTICES = Counter(
    "snorq_platform_notices", "Errors a platform reported in a webhook.", ["platform"]
)

# Series an alert watches exist from the start: `increase()` misses a series' first event.
for _platform in PLATFORMS:
    for _metric in (WEBHOOKS_RECEIVED, WEBHOOKS_ACKNOWLEDGED, REAUTHORIZATIONS):
        _metric.labels(_platform)
    for _reason in ("too_large", "bad_signature", "queue_unavailable"):
        WEBHOOKS_REFUSED.labels(_platform, _reason)
    for _outcome in ("refreshed", "retry_later", "refused"):
        TOKEN_REFRESHES.labels(_platform, _outcome)
    SENDS.labels(_platform, "sent", "")
    SENDS.labels(_platform, "unconfirmed", "PLATFORM_UNAVAILABLE")


def authorized(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant time)."""
    scheme, _, received = header.partition(" ")
    return bool(token) and scheme == "Bearer" and same_secret(token, received.strip())


def observe_since(histogram: Histogram, started: float, *labels: str) -> None:
    """Observe the seconds since ``started`` (a ``time.time()``) in ``histogram``."""
    histogram.labels(*labels).observe(max(0.0, time.time() - started))


# -- at scrape time ---------------------------------------------------------------------


class QueueCollector(Collector):
    """Each queue's waiting, delayed and dead-lettered jobs, read from the broker's keys.

    Dramatiq's Redis broker keeps a queue as the list ``<namespace>:<queue>``, its
    delayed jobs as the list ``<namespace>:<queue>.DQ`` and its dead letters as the
    sorted set ``<namespace>:<queue>.XQ`` (``dramatiq/brokers/redis/dispatch.lua``).

    Parameters:
      client: The broker's Redis client.
      namespace: The broker's key prefix.
      queues: The queue names to report.
    """

    def __init__(self, client: redis.Redis, namespace: str, queues: Iterable[str]) -> None:
        self.client = client
        self.namespace = namespace
        self.queues = tuple(queues)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        reachable = GaugeMetricFamily(
            "snorq_broker_reachable", "1 when the scrape could read the queues from Redis."
        )
        try:
            counts = self._counts()
        except (redis.RedisError, OSError) as error:
            log.warning("Could not read queue depths (%s)", type(error).__name__)
            reachable.add_metric([], 0)
            yield reachable
            return
        reachable.add_metric([], 1)
        yield reachable
        families = [
            GaugeMetricFamily("snorq_queue_depth", "Jobs waiting in a queue.", labels=["queue"]),
            GaugeMetricFamily(
                "snorq_queue_delayed",
                "Jobs waiting for their time (retries, waits).",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                "snorq_dead_letters", "Dead-lettered jobs kept in a queue's XQ.", labels=["queue"]
            ),
        ]
        for queue, values in zip(self.queues, counts, strict=True):
            for family, value in zip(families, values, strict=True):
                family.add_metric([queue], value)
        yield from families

    def _counts(self) -> list[tuple[int, int, int]]:
        reads = self.client.pipeline(transaction=False)
        for queue in self.queues:
            key = f"{self.namespace}:{queue}"
            reads.llen(key)
            reads.llen(f"{key}.DQ")
            reads.zcard(f"{key}.XQ")
        values = reads.execute()
        return [tuple(values[i : i + 3]) for i in range(0, len(values), 3)]


class ConnectionCollector(Collector):
    """How many platform connections are in each status, read from the database."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "snorq_connections",
            "Platform connections by status (NEEDS_REAUTH: a person must reconnect).",
            labels=["platform", "status"],
        )
        query = PlatformConnection.select(
            PlatformConnection.platform, PlatformConnection.status, fn.COUNT(PlatformConnection.id)
        ).group_by(PlatformConnection.platform, PlatformConnection.status)
        try:
            rows = list(query.tuples())
        except (PeeweeException, OSError) as error:
            log.warning("Could not count connections (%s)", type(error).__name__)
            return
        for platform, status, count in rows:
            family.add_metric([platform, status], count)
        yield family


class _ThisProcess(Collector):
    """The metrics this process counted in memory (no multiprocess directory)."""

    def collect(self):
        yield from REGISTRY.collect()


def multiprocess() -> bool:
    """Whether this process counts into ``PROMETHEUS_MULTIPROC_DIR``."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def render(*extra: Collector) -> bytes:
    """Everything this process type counted, plus ``extra`` collectors, as Prometheus text.

    In multiprocess mode that is every process sharing the directory (all of
    gunicorn's workers, or all of ``dramatiq workers``' processes).
    """
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)
