"""A worker killed with SIGKILL in the middle of its work loses and duplicates nothing.

Thousands of signed webhooks flow at a steady rate, the three platforms in turn.
While the worker holds jobs it fetched and has not acknowledged, its whole
process group is killed outright; a new worker starts at once. Dramatiq's Redis
broker gives a dead worker's jobs back to their queue once its heartbeat is
older than the timeout (15 s here), at the next maintenance pass of a live
worker; running a job again stores nothing twice. Every message must end stored
exactly once, within a bounded time that the test measures and reports.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.deployment import ACCOUNTS
from tests.processes import wait_for
from tests.reliability import evidence
from tests.reliability.platform_load import PlatformLoad, customer_messages
from tests.reliability.site import seconds_until

pytestmark = pytest.mark.reliability

WEBHOOKS = 3_000
#: Webhooks per second, steady.
RATE = 200
#: The kill comes once this many webhooks were acknowledged.
KILL_AFTER = 800
#: Kills tried to catch the worker holding webhooks (see _kill_holding_inbound_jobs).
KILL_TRIES = 5
#: Seconds from the kill until every message must be stored: the heartbeat timeout
#: (15 s), a maintenance pass, and the backlog.
BOUND = 60


def test_a_worker_killed_mid_batch_leaves_every_message_stored_exactly_once(deploy, report):
    site = deploy()
    site.stack.start("web")
    worker = site.start_worker()
    broker = site.broker()
    load = PlatformLoad(site.stack.url, site.signing_secrets)
    webhooks = customer_messages(WEBHOOKS, ACCOUNTS)
    external_ids = [webhook.external_id for webhook in webhooks]
    load.start(webhooks, RATE)
    try:
        wait_for(lambda: load.acknowledged() >= KILL_AFTER, timeout=60, what="the first webhooks")
        held, in_flight = _kill_holding_inbound_jobs(site, worker, broker)
        killed_at = time.monotonic()
        killed_after = load.elapsed()
        stored_at_kill = evidence.stored_messages(site.database_url)
        site.start_worker()
        restarted = time.monotonic() - killed_at

        def dead_jobs_requeued() -> bool:
            still = evidence.unacknowledged(broker)
            return not any(still.get(broker_id) for broker_id in held)

        requeued = seconds_until(dead_jobs_requeued, BOUND)
        stored = seconds_until(lambda: evidence.all_stored(site.database_url, external_ids), BOUND)
        recovered = time.monotonic() - killed_at if stored is not None else None
    finally:
        load.stop()
    counts = evidence.exactly_once(external_ids, evidence.stored_messages(site.database_url))
    figures = {
        **counts,
        "webhooks_per_second": RATE,
        "killed_after_acknowledged": KILL_AFTER,
        "jobs_held_by_the_killed_worker": {
            queue: len(jobs) for queues in held.values() for queue, jobs in queues.items()
        },
        "webhooks_in_its_inbound_jobs": len(in_flight),
        "of_which_already_stored_at_the_kill": sum(bool(stored_at_kill[i]) for i in in_flight),
        "answers": load.outcomes(),
        "killed_into_the_stream_seconds": killed_after,
        "new_worker_ready_seconds": restarted,
        "dead_jobs_requeued_seconds": requeued,
        "all_stored_after_kill_seconds": recovered,
        "last_acknowledged_seconds": max(webhook.acknowledged_at or 0.0 for webhook in webhooks),
    }
    line = report("worker_crash", figures)
    assert in_flight, f"the worker died holding no inbound job: {line}"
    assert counts["lost"] == 0 and counts["duplicated"] == 0, line
    assert requeued is not None and recovered is not None, line


def _kill_holding_inbound_jobs(site, worker, broker) -> tuple[dict, list]:
    """Kill the worker while it holds inbound jobs; what it held, frozen at the kill.

    At this rate the worker is mostly idle: jobs it held when looked at may be done
    by the time the kill lands. Such a kill proves nothing, so a new worker starts and
    the next one is tried (at most ``KILL_TRIES``).
    """
    for _ in range(KILL_TRIES):
        wait_for(
            lambda: _holds_inbound_jobs(broker),
            timeout=30,
            what="inbound jobs in flight",
            interval=0.002,
        )
        worker.kill()
        # Frozen now: what the dead worker had fetched and not acknowledged.
        held = evidence.unacknowledged(broker)
        in_flight = evidence.held_webhooks(broker)
        if in_flight:
            break
        worker = site.start_worker()
    return held, in_flight


def _holds_inbound_jobs(broker) -> bool:
    """Whether a worker holds inbound jobs it fetched and has not acknowledged."""
    held = evidence.unacknowledged(broker)
    return any(queues.get("inbound") for queues in held.values())
