"""PostgreSQL goes away while jobs run: they retry, and everything lands once when it is back.

Every SNORQ process reaches the database through a TCP proxy. While signed
webhooks flow and staff replies are being sent (some of them held inside a slow
platform call), the proxy is cut: every database connection closes and new ones
are refused, as when PostgreSQL stops. The webhooks keep being acknowledged (the
web only queues them); the jobs fail and retry with backoff. Once the database
is back, every inbound message must be stored once, and every reply must end
SENT or FAILED with a reason, accepted by the platform at most once.

A send whose attempt the outage broke right after it claimed the reply goes out
on the job's own retry, which takes the claim the broken attempt could not give
back (reproduced on its own below); SNORQ's own outages get the job about three
minutes of retries.
"""

from __future__ import annotations

import collections
import time

import pytest
import requests
import responses
from peewee import OperationalError

from app import messages
from app.models import MessageStatus
from tests import platform_fakes
from tests.e2e.deployment import ACCOUNTS, PLATFORMS
from tests.platform_fakes import SEND_URLS, conversation, reload, whatsapp_sent
from tests.processes import wait_for
from tests.reliability import evidence
from tests.reliability.evidence import SENT
from tests.reliability.platform_load import PlatformLoad, customer_messages
from tests.reliability.site import REPLY_MARKER, seconds_until
from workers.outbound import send_message

pytestmark = pytest.mark.reliability

WEBHOOKS = 900
RATE = 60
REPLIES = 30
#: Sends per platform held this long inside the platform call, so the cut finds some there.
#: Their status and echo webhooks name SNORQ's message; TikTok's cannot (see the
#: platform faults scenario), so its sends are not held.
SLOWED, SLOW_SENDS, SLOW_DELAY = ("whatsapp", "facebook"), 3, 1.5
OUTAGE = 8.0
#: Seconds an unconfirmed send waits for a webhook before the clock's sweep fails it.
UNCONFIRMED_WAIT = 10
#: Seconds from the database's return until each step must be done: every message
#: stored; every reply settled or left to the sweep (the unconfirmed wait); swept.
BOUND = 60


def test_while_postgresql_is_down_jobs_retry_and_every_message_lands_once(
    deploy, report, database_proxy
):
    site = deploy(SNORQ_CLOCK_RUN_AT_START="1", SNORQ_SEND_UNCONFIRMED_WAIT=str(UNCONFIRMED_WAIT))
    site.stack.env["DATABASE_URL"] = database_proxy.url_for(site.database_url)
    site.stack.start("web")
    site.start_worker()
    load = PlatformLoad(site.stack.url, site.signing_secrets)
    webhooks = customer_messages(WEBHOOKS, ACCOUNTS)
    external_ids = [webhook.external_id for webhook in webhooks]
    load.start(webhooks, RATE)
    replies: dict[int, tuple[str, str]] = {}
    try:
        conversations = wait_for(site.conversations, timeout=30, what="a conversation each")
        for platform in SLOWED:
            fault = {"platform": platform, "kind": "slow", "count": SLOW_SENDS}
            requests.post(
                f"{site.simulator_url}/_simulator/faults",
                json=fault | {"delay": SLOW_DELAY},
                timeout=5,
            ).raise_for_status()
        for number in range(REPLIES):
            platform = PLATFORMS[number % len(PLATFORMS)]
            text = f"Reply {number} {REPLY_MARKER}"
            replies[site.reply(conversations[platform], text)] = (platform, text)
        inside = wait_for(
            lambda: _inside_the_platform_call(site, replies),
            timeout=30,
            what="sends inside the platform call",
            interval=0.02,
        )
        database_proxy.cut()
        down_from = load.elapsed()
        time.sleep(OUTAGE)
        database_proxy.listen()
        back_at = load.elapsed()
        stored = _after(load, back_at, lambda: evidence.all_stored(site.database_url, external_ids))
        waiting = _after(
            load, back_at, lambda: evidence.only_the_sweep_left(site.database_url, replies)
        )
        # The clock starts now, so its first sweep runs at once, not at the next whole minute.
        site.stack.start("clock")
        settled = _after(load, back_at, lambda: evidence.all_settled(site.database_url, replies))
    finally:
        load.stop()
    counts = evidence.exactly_once(external_ids, evidence.stored_messages(site.database_url))
    outcomes = evidence.replies(site.database_url, replies)
    sends = evidence.platform_requests(site.simulator_url)
    accepted = {
        message_id: evidence.times_accepted(sends, text)
        for message_id, (_, text) in replies.items()
    }
    failed = [reply for reply in outcomes.values() if reply.status == "FAILED"]
    figures = {
        **counts,
        "webhooks_per_second": RATE,
        "answers": load.outcomes(),
        "answers_while_down": load.answers_between(down_from, back_at),
        "replies": len(replies),
        "replies_inside_the_platform_call_at_the_cut": inside,
        "replies_sent": sum(reply.status in SENT for reply in outcomes.values()),
        "replies_failed": len(failed),
        "replies_pending": sum(reply.status == "PENDING" for reply in outcomes.values()),
        "outcomes": collections.Counter(
            f"{replies[message_id][0]}: {reply.outcome()}" for message_id, reply in outcomes.items()
        ),
        "replies_accepted_twice_by_the_platform": sum(n > 1 for n in accepted.values()),
        "replies_failed_though_the_platform_accepted_them": sum(
            reply.status == "FAILED" and accepted[message_id] == 1
            for message_id, reply in outcomes.items()
        ),
        "echoes_stored_as_other_messages": evidence.unlinked_echoes(site.database_url, replies),
        "outage_seconds": back_at - down_from,
        "all_stored_after_return_seconds": stored,
        "replies_settled_or_waiting_for_the_sweep_after_return_seconds": waiting,
        "all_replies_settled_after_return_seconds": settled,
    }
    line = report("database_outage", figures)
    assert counts["lost"] == 0 and counts["duplicated"] == 0, line
    assert set(load.outcomes()) == {"200"}, line
    assert all(n <= 1 for n in accepted.values()), line
    for message_id, reply in outcomes.items():
        assert reply.status not in SENT or accepted[message_id] == 1, line
    assert all(reply.error_code is not None and reply.error_message for reply in failed), line
    assert settled is not None, line


def _inside_the_platform_call(site, replies) -> int:
    """How many replies a worker is sending right now (marked, not yet answered)."""
    outcomes = evidence.replies(site.database_url, replies).values()
    return sum(
        reply.status == "PENDING" and reply.error_code == evidence.SEND_UNCONFIRMED
        for reply in outcomes
    )


def _after(load: PlatformLoad, start: float, condition) -> float | None:
    """Seconds from ``start`` (into the load) until ``condition()`` holds; None if not in BOUND."""
    if seconds_until(condition, BOUND) is None:
        return None
    return load.elapsed() - start


@responses.activate
def test_a_send_whose_attempt_the_database_broke_goes_out_on_the_jobs_retry(
    worker, org, connections, user, monkeypatch
):
    responses.post(SEND_URLS["whatsapp"], json=whatsapp_sent("wamid.RETRIED"))
    message = platform_fakes.reply(conversation(org, connections["whatsapp"]), user)
    claim_send, broken = messages.claim_send, []

    def database_gone_once(*args, **kwargs):
        # The connection drops as the claim is sent, after the checks: nothing is left behind.
        if not broken:
            broken.append(args[0])
            raise OperationalError("server closed the connection unexpectedly")
        return claim_send(*args, **kwargs)

    monkeypatch.setattr(messages, "claim_send", database_gone_once)
    send_message.send(message.id)
    worker.drain()
    sent = reload(message)
    assert (broken, sent.status, sent.external_id, len(responses.calls)) == (
        [message.id],
        MessageStatus.SENT,
        "wamid.RETRIED",
        1,
    )
