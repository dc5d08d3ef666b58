"""``python -m scheduler``: the clock process of the Procfile.

With ``SNORQ_CLOCK_RUN_AT_START=1`` every job also runs once as soon as the clock
starts, instead of first at its next cron instant (the end-to-end tests use it).
That run takes the same Redis lock as the scheduled one it stands for, so clocks
starting together still run it once.
"""

from __future__ import annotations

import contextlib
import datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from app.config import get_settings
from app.logs import configure_logging
from scheduler.jobs import add_jobs


def main() -> None:
    configure_logging()
    settings = get_settings()
    import workers  # noqa: F401  (sets the broker the jobs enqueue on)

    scheduler = BlockingScheduler(timezone="UTC")
    add_jobs(scheduler)
    if settings.clock_run_at_start:
        run_at_start(scheduler)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


def run_at_start(scheduler: BaseScheduler) -> None:
    """Make every job registered so far fire when ``scheduler`` starts, then keep its schedule."""
    now = datetime.datetime.now(datetime.UTC)
    for job in scheduler.get_jobs():
        job.modify(next_run_time=now)


if __name__ == "__main__":
    main()
