"""What the clock enqueues, and when.

Each job only enqueues work for the workers, or puts back on its queue work a
worker forgot (``workers/delay_queues.py``). Jobs run cron-aligned (every N
minutes on the minute), so every clock process fires at the same instants; a
Redis lock per scheduled run keeps a second clock (a deploy overlap, a
mistaken scale-up) from enqueueing the same run twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from apscheduler.schedulers.base import BaseScheduler

from app.redis_client import get_redis

log = logging.getLogger(__name__)


def run_once(name: str, period_minutes: int, job: Callable[[], object]) -> bool:
    """Run ``job`` unless another clock already ran this scheduled run.

    The run is named by the nearest multiple of the period, so clocks whose
    times differ by less than half a period agree on it.

    Returns:
      True if this process ran it.
    """
    period = period_minutes * 60
    run = round(time.time() / period)
    if not get_redis().set(f"snorq:clock:{name}:{run}", "1", nx=True, ex=2 * period):
        log.info("Another clock already ran %s", name)
        return False
    job()
    return True


def _every(scheduler: BaseScheduler, minutes: int, name: str, job: Callable[[], object]):
    scheduler.add_job(
        run_once,
        "cron",
        minute=f"*/{minutes}",
        args=(name, minutes, job),
        id=name,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=30,
    )


#: Minutes between two token refresh passes (TikTok access tokens live about a day).
TOKEN_REFRESH_MINUTES = 10
#: Minutes between two sweeps of sends stuck in PENDING.
SEND_SWEEP_MINUTES = 1
#: Minutes between two sweeps of attachments whose fetch job was lost.
MEDIA_SWEEP_MINUTES = 5
#: Minutes between two sweeps of webhooks whose inbound job was lost.
WEBHOOK_SWEEP_MINUTES = 1
#: Minutes between two rescues of delayed jobs a live worker forgot (Dramatiq #527).
DELAYED_JOBS_MINUTES = 1
#: Minutes between two passes opening conversations whose snooze is over.
SNOOZE_MINUTES = 1
#: Minutes between two retention passes (each deletes what expired since the last).
RETENTION_MINUTES = 15


def add_jobs(scheduler: BaseScheduler) -> None:
    """Register every periodic job on ``scheduler`` (cron-aligned, in UTC)."""
    from workers.delay_queues import requeue_forgotten  # late: it sets up the broker
    from workers.inbound import sweep_webhooks
    from workers.media import sweep_media
    from workers.outbound import sweep_sends
    from workers.retention import prune_stored
    from workers.snoozes import wake_snoozed
    from workers.tokens import enqueue_due_refreshes

    _every(scheduler, TOKEN_REFRESH_MINUTES, "token-refresh", enqueue_due_refreshes)
    _every(scheduler, SEND_SWEEP_MINUTES, "send-sweep", sweep_sends.send)
    _every(scheduler, MEDIA_SWEEP_MINUTES, "media-sweep", sweep_media.send)
    _every(scheduler, WEBHOOK_SWEEP_MINUTES, "webhook-sweep", sweep_webhooks.send)
    _every(scheduler, RETENTION_MINUTES, "retention", prune_stored.send)
    _every(scheduler, SNOOZE_MINUTES, "snoozes", wake_snoozed.send)
    # Run by the clock itself: it repairs the queues a job would have to go through.
    _every(scheduler, DELAYED_JOBS_MINUTES, "delayed-jobs", requeue_forgotten)
