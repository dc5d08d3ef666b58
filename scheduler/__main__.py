"""``python -m scheduler``: the clock process of the Procfile."""

from __future__ import annotations

import contextlib

from apscheduler.schedulers.blocking import BlockingScheduler

from app.config import get_settings
from app.logs import configure_logging
from scheduler.jobs import add_jobs


def main() -> None:
    configure_logging()
    get_settings()
    import workers  # noqa: F401  (sets the broker the jobs enqueue on)

    scheduler = BlockingScheduler(timezone="UTC")
    add_jobs(scheduler)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


if __name__ == "__main__":
    main()
