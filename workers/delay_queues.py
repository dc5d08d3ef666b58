"""Delayed jobs a live worker forgot: the clock puts them back on their delay queue.

A delayed job (a retry waiting for its backoff, a send waiting for ``Retry-After`` or
a rate-limit token) is fetched from its queue's delay queue by a worker, which keeps
it in memory until its eta, while its id waits in that worker's ack set in Redis
(``<namespace>:__acks__.<worker id>.<queue>.DQ``; the key layout is documented at
the top of ``dramatiq/brokers/redis/dispatch.lua``). Dramatiq 2.2.1 empties that
memory when the worker's connection to Redis fails (``worker.py``,
``ConsumerThread.run`` replaces its ``delay_queue``:
https://github.com/Bogdanp/dramatiq/issues/527), and gives an ack set back only once
its worker is dead: a live worker keeps the forgotten jobs until it restarts.

A worker moves a delayed job on within a second of its eta, so one still held
``SNORQ_DELAYED_JOB_GRACE`` seconds (default 120) after its eta was forgotten. Every
minute the clock puts each such job back on its delay queue, where any worker takes
it up at once (its eta has passed). Were its worker only slow, the job would run
twice: harmless, as every SNORQ job is safe to run twice.
"""

from __future__ import annotations

import logging

from dramatiq import Message
from dramatiq.common import current_millis

from app.config import get_settings
from workers.broker import broker

log = logging.getLogger(__name__)

#: Moves one id from an ack set (KEYS[1]) back to its delay queue (KEYS[2]), only if it
#: was still in the set: its worker acknowledging it, or Dramatiq's maintenance giving a
#: dead worker's jobs back, may have taken it out meanwhile. An id whose message is
#: gone from the queue's hash (KEYS[3]) is dropped, as Dramatiq's own requeue does.
_REQUEUE = broker.client.register_script(
    """
    if redis.call("srem", KEYS[1], ARGV[1]) == 0 then
        return 0
    end
    if redis.call("hexists", KEYS[3], ARGV[1]) == 0 then
        return 0
    end
    redis.call("rpush", KEYS[2], ARGV[1])
    return 1
    """
)


def requeue_forgotten() -> int:
    """Put back every delayed job held ``SNORQ_DELAYED_JOB_GRACE`` s past its eta.

    Returns:
      How many jobs were put back.
    """
    overdue_before = current_millis() - get_settings().delayed_job_grace * 1000
    prefix = f"{broker.namespace}:__acks__."
    requeued = 0
    for key in broker.client.scan_iter(match=f"{prefix}*.DQ"):
        # The worker id is a UUID: the queue's name is everything after its first dot.
        _, _, delay_queue = key.decode().removeprefix(prefix).partition(".")
        requeued += _requeue_overdue(key, delay_queue, overdue_before)
    if requeued:
        log.warning("Put back %d delayed job(s) a live worker had forgotten", requeued)
    return requeued


def _requeue_overdue(ack_key: bytes, delay_queue: str, overdue_before: int) -> int:
    """Put back the jobs of one ack set whose eta is before ``overdue_before`` (ms)."""
    queue = f"{broker.namespace}:{delay_queue}"
    ids = list(broker.client.smembers(ack_key))
    if not ids:
        return 0
    requeued = 0
    for job_id, data in zip(ids, broker.client.hmget(f"{queue}.msgs", ids), strict=True):
        if data is None or Message.decode(data).options.get("eta", 0) >= overdue_before:
            continue
        requeued += _REQUEUE(keys=[ack_key, queue, f"{queue}.msgs"], args=[job_id])
    return requeued
