"""The Dramatiq broker every SNORQ process shares, set up when this module is imported.

Dramatiq needs its broker before any actor is declared, so this is the one module
whose import has side effects: it binds the database proxy (no connection yet)
and sets a Redis broker on the process's Redis client (``REDIS_URL``, or the
in-process store of the embedded mode).
"""

from __future__ import annotations

import collections
import logging
import threading
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import dq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import CurrentMessage, Middleware, Retries, TimeLimit

from app.config import get_settings
from app.db import database, init_database
from app.logs import configure_logging, install_redaction
from app.redis_client import get_redis
from workers.dead_letters import DeadLetters
from workers.exporter import JobMetrics
from workers.request_ids import RequestIds

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
#: Seconds between two tries at enqueueing a retry while Redis is unreachable.
ENQUEUE_RETRY_DELAY = 1

log = logging.getLogger(__name__)


class Broker(RedisBroker):
    """Dramatiq's Redis broker, whose consumers take back the jobs a failed fetch left behind.

    Dramatiq's fetch is one script: Redis moves the jobs it returns into the worker's
    ack set (``<namespace>:__acks__.<worker id>.<queue>``), and gives an ack set back
    only once its worker is dead. When the connection fails between the two, because
    Redis went down after running the fetch and before answering, or while the
    consumer still had some of a fetch's jobs to hand out, a live worker never runs
    those jobs and nothing else does until it restarts: an inbound job's webhooks
    were acknowledged to the platform, so they would be lost meanwhile.

    Dramatiq starts a new consumer after a connection error. Its first fetch first
    puts back every job of the worker's ack set for its queue that no thread of the
    worker holds (a job is held from the moment the consumer hands it out until it is
    acknowledged). Delay queues are left to the clock (``workers/delay_queues.py``):
    their held jobs are forgotten on the same error, and the clock knows when each is due.
    """

    def __init__(self, **options) -> None:
        super().__init__(**options)
        #: Per queue, the ids (``redis_message_id``) of the jobs handed out and not yet
        #: acknowledged, shared by the queue's successive consumers.
        self.held_jobs: dict[str, set[str]] = collections.defaultdict(set)

    @property
    def consumer_class(self):
        return RecoveringConsumer


class RecoveringConsumer(_RedisConsumer):
    """A consumer that first puts back the jobs its worker lost (see :class:`Broker`)."""

    def __init__(self, broker: Broker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self.held = broker.held_jobs[queue_name]
        self.looked_for_lost_jobs = queue_name == dq_name(queue_name)

    def __next__(self):
        if not self.looked_for_lost_jobs:
            self._put_back_lost_jobs()
            self.looked_for_lost_jobs = True
        message = super().__next__()
        if message is not None:
            self.held.add(message.options["redis_message_id"])
        return message

    def ack(self, message) -> None:
        super().ack(message)
        self.held.discard(message.options["redis_message_id"])

    def nack(self, message) -> None:
        super().nack(message)
        self.held.discard(message.options["redis_message_id"])

    def _put_back_lost_jobs(self) -> None:
        acks = f"{self.broker.namespace}:__acks__.{self.broker.broker_id}.{self.queue_name}"
        try:
            # The ack set is read before the held jobs: one acknowledged in between is
            # in the first and not the second, and the requeue skips it (no longer in
            # the set). No job is handed out meanwhile: this consumer is the only one.
            fetched = {job.decode() for job in self.broker.client.smembers(acks)}
            lost = fetched - set(self.held)
            if not lost:
                return
            self.broker.do_requeue(self.queue_name, *lost)
        except redis.ConnectionError as error:
            raise ConnectionClosed(error) from None
        log.warning(
            "Put back %d %s job(s) fetched before a connection failure and never received",
            len(lost),
            self.queue_name,
        )


class DurableRetries(Retries):
    """Dramatiq's retries, except that a retry is enqueued even across a Redis outage.

    Dramatiq only logs a retry it could not enqueue (``Broker.emit_after`` swallows
    the error) and then acknowledges the job: gone, and an inbound job's webhooks with
    it when the database was unreachable too. This keeps trying until Redis answers,
    as Dramatiq itself does for the acknowledgement that follows
    (``ConsumerThread.post_process_message``): the job stays in the worker's ack set
    meanwhile, so a worker that dies while waiting has it redelivered.
    """

    def after_process_message(self, broker, message, *, result=None, exception=None):
        options = dict(message.options)
        while True:
            try:
                return super().after_process_message(
                    broker, message, result=result, exception=exception
                )
            except (redis.ConnectionError, redis.TimeoutError) as error:
                # The job is over: its time limit must not interrupt the wait for Redis.
                _end_time_limit(broker, message)
                log.warning(
                    "Could not enqueue the retry of %s (%s); trying again in %d s",
                    message.message_id,
                    type(error).__name__,
                    ENQUEUE_RETRY_DELAY,
                )
                # The next try counts this retry once, as the first would have.
                message.options.clear()
                message.options.update(options)
                time.sleep(ENQUEUE_RETRY_DELAY)


def _end_time_limit(broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
    for middleware in broker.middleware:
        if isinstance(middleware, TimeLimit):
            middleware.after_process_message(broker, message)


class DatabaseConnection(Middleware):
    """Each worker thread keeps one pooled database connection from job to job.

    Taking a connection from the pool and giving it back around every job cost the
    inbound worker about a quarter of its time: peewee does both under one lock per
    process, which all the threads wait on. A job that failed gives its connection
    back (it may be why it failed: the pool drops a broken one), and so does a
    thread that was idle for ``IDLE_SECONDS`` before a job, or that stops.
    """

    #: An idle thread's connection goes back to the pool before the next job
    #: (the server or a proxy may have closed it meanwhile).
    IDLE_SECONDS = 60

    def __init__(self) -> None:
        self._last_job = threading.local()

    def before_process_message(self, broker, message):
        idle = time.monotonic() - getattr(self._last_job, "ended", 0.0)
        if idle > self.IDLE_SECONDS and not database.is_closed():
            database.close()
        database.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        self._last_job.ended = time.monotonic()
        if exception is not None:
            database.close()

    def after_skip_message(self, broker, message):
        self._last_job.ended = time.monotonic()

    def before_worker_thread_shutdown(self, broker, thread):
        database.close()


class WorkerLogging(Middleware):
    """A ``dramatiq workers`` process logs in SNORQ's format (``LOG_FORMAT``), not Dramatiq's.

    The command sets up its own logging before it imports the broker, then says the
    process has booted: only it does, so the web process and the tests keep theirs.
    """

    def after_process_boot(self, broker):
        configure_logging(replace=True)


def make_broker() -> Broker:
    retries = DurableRetries(min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS, max_retries=3)
    broker = Broker(
        client=get_redis(),
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
        middleware=[
            retries if kind is Retries else kind()
            for kind in dramatiq.middleware.default_middleware
        ],
    )
    broker.add_middleware(DatabaseConnection())
    # Actors read their own message (the send actor: how often it was retried).
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(JobMetrics())
    broker.add_middleware(RequestIds(), before=type(broker.middleware[0]))
    broker.add_middleware(DeadLetters(), before=DurableRetries)
    broker.add_middleware(WorkerLogging())
    for queue_name in QUEUES:
        broker.declare_queue(queue_name)
    return broker


install_redaction()
init_database(get_settings())
broker = make_broker()
dramatiq.set_broker(broker)
