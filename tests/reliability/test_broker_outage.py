"""Redis crashes while webhooks arrive: nothing acknowledged is lost, nothing is stored twice.

The stack runs on a private ``redis-server`` configured as in production
(append-only file, fsync on every write). While signed webhooks flow, Redis is
killed with SIGKILL and kept down for a few seconds, then restarted on the same
files. Meanwhile the web must answer 503 to every webhook it could not queue —
never 200, never another error — and keep answering; the platforms' retries
then deliver those webhooks again, and every message must end stored once.

A reply whose send job meets Redis down (its rate-limit token lives there) must
not be left looking as if it may have gone out: nothing went out, so its retry
sends it.

Retries must survive a Redis blip too: those a worker holds until their time comes
(which Dramatiq forgets when its connection fails, Bogdanp/dramatiq#527) are put
back by the clock, and a retry that cannot be enqueued waits for Redis to return.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
import requests
import responses

from app import live
from app.models import Message, MessageStatus
from tests.e2e.deployment import ACCOUNTS
from tests.payloads import payload
from tests.platform_fakes import SEND_URLS, conversation, reload, reply, whatsapp_sent
from tests.processes import wait_for
from tests.reliability import evidence
from tests.reliability.platform_load import PlatformLoad, customer_messages
from tests.reliability.site import seconds_until
from tests.support import meta_body
from workers import limits
from workers.inbound import ingest_webhooks
from workers.outbound import send_message

pytestmark = pytest.mark.reliability

WEBHOOKS = 1_500
RATE = 100
#: Redis goes down once this many webhooks were acknowledged, for ``OUTAGE`` seconds.
CRASH_AFTER = 400
OUTAGE = 6.0
#: Seconds from Redis's return until every message must be stored.
BOUND = 60


def test_while_redis_is_down_webhooks_get_503_and_their_retries_land_once(
    deploy, report, redis_server
):
    site = deploy(REDIS_URL=redis_server.url)
    web = site.stack.start("web")
    worker = site.start_worker()
    load = PlatformLoad(site.stack.url, site.signing_secrets)
    webhooks = customer_messages(WEBHOOKS, ACCOUNTS)
    external_ids = [webhook.external_id for webhook in webhooks]
    load.start(webhooks, RATE)
    try:
        wait_for(lambda: load.acknowledged() >= CRASH_AFTER, timeout=60, what="the first webhooks")
        redis_server.crash()
        down_from = load.elapsed()
        health = _watch(f"{site.stack.url}/healthz", OUTAGE)
        readiness = requests.get(f"{site.stack.url}/readyz", timeout=10).status_code
        redis_server.start()
        back_at = load.elapsed()

        def delivered_and_stored() -> bool:
            return load.acknowledged() == WEBHOOKS and evidence.all_stored(
                site.database_url, external_ids
            )

        stored = seconds_until(delivered_and_stored, BOUND)
    finally:
        load.stop()
    stored_now = evidence.stored_messages(site.database_url)
    counts = evidence.exactly_once(external_ids, stored_now)
    during = [entry for entry in load.log if down_from + 0.5 <= entry[0] <= back_at - 0.5]
    refused = [seconds for _, outcome, seconds in load.log if outcome != "200"]
    first_acknowledged_after = min(
        (at + seconds for at, outcome, seconds in load.log if outcome == "200" and at >= back_at),
        default=None,
    )
    figures = {
        **counts,
        "webhooks_per_second": RATE,
        "answers": load.outcomes(),
        "answers_while_down": load.answers_between(down_from + 0.5, back_at - 0.5),
        "webhooks_refused_at_least_once": sum(w.outcomes[0] != "200" for w in webhooks),
        "healthz_while_down": health,
        "readyz_while_down": readiness,
        "web_and_worker_running_after": web.running and worker.running,
        "slowest_refusal_seconds": max(refused, default=None),
        "outage_seconds": back_at - down_from,
        "first_acknowledged_after_return_seconds": (
            None if first_acknowledged_after is None else first_acknowledged_after - back_at
        ),
        "all_stored_after_return_seconds": stored,
        "lost_webhooks": evidence.whereabouts(
            site.broker(), evidence.lost(external_ids, stored_now)
        ),
    }
    line = report("broker_outage", figures)
    assert counts["lost"] == 0 and counts["duplicated"] == 0, line
    assert load.acknowledged() == WEBHOOKS, line
    assert set(load.outcomes()) <= {"200", "503"}, line
    assert during and {outcome for _, outcome, _ in during} == {"503"}, line
    assert set(health) == {"200"} and readiness == 503, line
    assert web.running and worker.running, line


def _watch(url: str, seconds: float) -> dict[str, int]:
    """The answers ``url`` gives, asked twice a second for ``seconds``."""
    answers: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            outcome = str(requests.get(url, timeout=2).status_code)
        except requests.RequestException as error:
            outcome = type(error).__name__
        answers[outcome] = answers.get(outcome, 0) + 1
        time.sleep(0.5)
    return answers


def test_a_group_of_webhooks_is_stored_whole_when_live_events_cannot_be_published(
    connections, monkeypatch
):
    group, external_ids = [], []
    for number in range(3):
        document = payload("whatsapp", "text")
        message = document["entry"][0]["changes"][0]["value"]["messages"][0]
        message["id"] = external_id = f"wamid.GROUP{number}"
        external_ids.append(external_id)
        group.append([uuid.uuid4().hex, "whatsapp", meta_body(document).decode(), time.time()])

    def redis_down(*args, **kwargs):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(live, "publish_all", redis_down)
    ingest_webhooks.fn(group)
    stored = Message.select(Message.external_id).order_by(Message.id)
    assert [message.external_id for message in stored] == external_ids


@responses.activate
def test_a_reply_that_meets_redis_down_is_not_left_unconfirmed_and_goes_out_on_its_retry(
    org, connections, user, monkeypatch
):
    responses.post(SEND_URLS["whatsapp"], json=whatsapp_sent("wamid.AFTER"))
    message = reply(conversation(org, connections["whatsapp"]), user)

    def redis_down(limiter, waiter=None):
        raise redis.ConnectionError("Connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(limits.SlidingLogRateLimiter, "take", redis_down)
        with pytest.raises(redis.ConnectionError):
            send_message.fn(message.id)
    waiting = reload(message)
    assert (waiting.status, waiting.error_code, len(responses.calls)) == (
        MessageStatus.PENDING,
        None,
        0,
    )
    send_message.fn(message.id)
    sent = reload(message)
    assert (sent.status, sent.external_id, len(responses.calls)) == (
        MessageStatus.SENT,
        "wamid.AFTER",
        1,
    )


#: Seconds a delayed job may stay held past its eta before the clock puts it back.
DELAYED_JOB_GRACE = 5
#: Seconds from both outages' end until every message must be stored: the held
#: retries' eta and grace, the clock's start, then the retries' run.
RETRY_BOUND = 40


def test_retries_waiting_in_a_worker_when_redis_blips_still_run(
    deploy, report, redis_server, database_proxy
):
    site = deploy(
        REDIS_URL=redis_server.url,
        SNORQ_CLOCK_RUN_AT_START="1",
        SNORQ_DELAYED_JOB_GRACE=str(DELAYED_JOB_GRACE),
    )
    site.stack.env["DATABASE_URL"] = database_proxy.url_for(site.database_url)
    site.stack.start("web")
    worker = site.start_worker()
    broker = site.broker()
    load = PlatformLoad(site.stack.url, site.signing_secrets)
    webhooks = customer_messages(300, ACCOUNTS)
    external_ids = [webhook.external_id for webhook in webhooks]
    load.start(webhooks, RATE)
    try:
        wait_for(lambda: load.acknowledged() >= 100, timeout=30, what="the first webhooks")
        database_proxy.cut()
        waiting = wait_for(
            lambda: _retries_held(broker), timeout=20, what="the worker holds retries"
        )
        redis_server.crash()
        time.sleep(2)
        redis_server.start()
        forgotten = _held_etas(broker)
        database_proxy.listen()
        back_at = time.monotonic()
        # The clock starts once the forgotten retries are overdue, so its first run (at
        # start) puts them back, rather than the run at the next whole minute.
        overdue_at = max(forgotten.values(), default=0) / 1000 + DELAYED_JOB_GRACE + 0.5
        time.sleep(max(0.0, overdue_at - time.time()))
        site.stack.start("clock")
        clock_started = time.monotonic() - back_at
        stored = seconds_until(
            lambda: evidence.all_stored(site.database_url, external_ids),
            RETRY_BOUND - clock_started,
        )
    finally:
        load.stop()
    figures = {
        **evidence.exactly_once(external_ids, evidence.stored_messages(site.database_url)),
        "retries_held_by_the_worker_when_redis_crashed": waiting,
        "retries_held_when_redis_returned": len(forgotten),
        "of_those_still_held_after": len(forgotten.keys() & _held_etas(broker).keys()),
        "worker_running_after": worker.running,
        "clock_started_after_both_returned_seconds": clock_started,
        "all_stored_after_both_returned_seconds": (
            None if stored is None else clock_started + stored
        ),
    }
    stored_now = evidence.stored_messages(site.database_url)
    figures["lost_webhooks"] = evidence.whereabouts(broker, evidence.lost(external_ids, stored_now))
    line = report("retries_across_a_redis_blip", figures)
    assert figures["lost"] == 0 and figures["duplicated"] == 0, line
    assert figures["of_those_still_held_after"] == 0 and worker.running, line


def _retries_held(broker: redis.Redis) -> int:
    """Inbound jobs a worker fetched from the delay queue to run later, not yet acknowledged."""
    return len(_held_etas(broker))


def _held_etas(broker: redis.Redis) -> dict[str, int]:
    """The eta (ms) of each inbound job a worker holds from the delay queue, by its id."""
    held = evidence.unacknowledged(broker)
    ids = [job for queues in held.values() for job in queues.get("inbound.DQ", [])]
    data = broker.hmget(f"{evidence.NAMESPACE}:inbound.DQ.msgs", ids) if ids else []
    return {
        job: json.loads(raw)["options"]["eta"]
        for job, raw in zip(ids, data, strict=True)
        if raw is not None
    }
