"""Worker metrics: a middleware counting jobs, and the exporter ``dramatiq workers`` forks.

Dramatiq's own ``dramatiq.middleware.prometheus.Prometheus`` is not used: it makes
its metrics at ``process_boot``, which only the ``dramatiq`` command emits (in the
web process and the embedded mode every enqueue would fail in its hooks), and it
keeps them in a registry of its own, which the embedded ``/metrics`` could not
report. This middleware counts into SNORQ's metrics (``app/metrics.py``) in any
process, and only under ``dramatiq workers`` does its fork serve them: one HTTP
server per ``dramatiq workers`` command, on ``SNORQ_WORKER_METRICS_PORT`` (9191,
Dramatiq's port), adding up the files every worker process keeps in
``PROMETHEUS_MULTIPROC_DIR``. Like the web's ``/metrics``, it needs
``Authorization: Bearer <SNORQ_METRICS_TOKEN>`` and is off while no token is set.
"""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIRequestHandler, make_server

from dramatiq.middleware import Middleware
from prometheus_client import CONTENT_TYPE_LATEST

from app import metrics
from app.config import get_settings

log = logging.getLogger(__name__)


class JobMetrics(Middleware):
    """Counts every job a worker runs by outcome, and every job it dead-letters."""

    @property
    def forks(self):
        return [serve]

    def after_process_message(self, broker, message, *, result=None, exception=None):
        outcome = "done" if exception is None else "error"
        metrics.JOBS.labels(message.queue_name, message.actor_name, outcome).inc()

    def after_skip_message(self, broker, message):
        metrics.JOBS.labels(message.queue_name, message.actor_name, "skipped").inc()

    def after_nack(self, broker, message):
        metrics.JOBS_DEAD_LETTERED.labels(message.queue_name, message.actor_name).inc()


class _QuietHandler(WSGIRequestHandler):
    """No access log line for every scrape."""

    def log_message(self, format, *args):
        pass


def exporter(token: str):
    """The WSGI app answering ``GET /metrics`` with every worker process's metrics."""

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not found.\n"]
        if not metrics.authorized(environ.get("HTTP_AUTHORIZATION", ""), token):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"Bearer token required.\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [metrics.render()]

    return app


def serve() -> int:
    """Serve the workers' metrics until stopped (a ``dramatiq workers`` fork process).

    Returns:
      The fork's exit code: 0 when metrics are off, 1 when they cannot be served.
    """
    settings = get_settings()
    if not settings.metrics_token or not settings.worker_metrics_port:
        log.info("Worker metrics are off (set SNORQ_METRICS_TOKEN to serve them)")
        return 0
    if not metrics.multiprocess():
        log.error("Worker metrics need PROMETHEUS_MULTIPROC_DIR (see the Procfile); not serving")
        return 1
    port = settings.worker_metrics_port
    try:
        server = make_server(
            "0.0.0.0",  # noqa: S104  (scraped from other machines)
            port,
            exporter(settings.metrics_token),
            handler_class=_QuietHandler,
        )
    except OSError as error:
        log.error("Cannot serve worker metrics on port %d (%s)", port, error.strerror)
        return 1
    log.info("Serving worker metrics on port %d", port)
    server.serve_forever()
    return 0
