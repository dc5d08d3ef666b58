"""A storm of 429s, 5xx and timeouts from the platforms: every reply ends SENT or FAILED.

The simulated platforms answer the first sends with a mix of throttling (429 with
Retry-After), server errors, answers held past SNORQ's HTTP timeout (the message
went out; SNORQ cannot know) and one refusal for good per platform. Staff send a
batch of replies on each platform at once. Every reply must end SENT or FAILED
with a code and a reason, none may be left PENDING, the platform must accept each
at most once, and the platform must never see more calls than the configured rate
limits allow in any window (WhatsApp and Messenger are held to 5 calls a second,
per account, by SNORQ and by the simulator alike; TikTok keeps its own 600 a minute).

A reply whose answer timed out went out, so its webhooks settle it SENT — never
FAILED, never shown twice: WhatsApp's status and Messenger's echo name SNORQ's
message; TikTok's echo names none and is matched to the reply (reproduced on its
own below).
"""

from __future__ import annotations

import collections
import datetime
import json
import time
import uuid

import pytest
import requests

from app import messages
from app.db import utcnow
from app.models import Conversation, Direction, Message, MessageStatus
from tests.e2e.deployment import ACCOUNTS, PLATFORMS
from tests.payloads import payload
from tests.processes import wait_for
from tests.reliability import evidence
from tests.reliability.evidence import SENT
from tests.reliability.platform_load import PlatformLoad, customer_messages
from tests.reliability.site import REPLY_MARKER, seconds_until
from tests.support import tiktok_body
from workers.inbound import ingest_webhooks

pytestmark = pytest.mark.reliability

REPLIES_PER_PLATFORM = 20
#: The storm, per platform: this many rounds of one 429, one 5xx and one timeout,
#: waiting in that order for the next sends; half-way, one refusal for good (the
#: messaging window closed), which fails its reply at once with a reason.
ROUNDS = {"whatsapp": 8, "facebook": 8, "tiktok": 4}
#: SNORQ waits this long for an answer; a held answer comes this much later.
HTTP_TIMEOUT, HELD = 2, 3.0
#: Calls per account per window, for SNORQ (the connection's burst limit) and the simulator.
LIMITS = {"whatsapp": (5, 1.0), "facebook": (5, 1.0), "tiktok": (600, 60.0)}
UNCONFIRMED_WAIT = 10
#: Seconds until every reply is settled or waits for the sweep (retries, the unconfirmed
#: wait), then until the sweep has settled them.
BOUND, SWEPT = 60, 30


def test_a_storm_of_platform_faults_leaves_every_reply_sent_or_failed_with_a_reason(deploy, report):
    site = deploy(
        throughput=tuple(f"{p}={calls}/{seconds:g}" for p, (calls, seconds) in LIMITS.items()),
        SNORQ_CLOCK_RUN_AT_START="1",
        SNORQ_HTTP_TIMEOUT=str(HTTP_TIMEOUT),
        SNORQ_SEND_UNCONFIRMED_WAIT=str(UNCONFIRMED_WAIT),
    )
    for platform in ("whatsapp", "facebook"):
        evidence.query(
            site.database_url,
            "UPDATE platform_connection SET burst_limit = %s WHERE id = %s RETURNING id",
            (LIMITS[platform][0], site.connections[platform]),
        )
    simulator_url = site.simulator_url
    site.stack.start("web")
    site.start_worker()
    load = PlatformLoad(site.stack.url, site.signing_secrets)
    load.start(customer_messages(len(PLATFORMS) * 5, ACCOUNTS, customers=5), rate=20)
    try:
        wait_for(lambda: load.acknowledged() == len(load.webhooks), timeout=30, what="customers")
    finally:
        load.stop()
    conversations = wait_for(site.conversations, timeout=30, what="a conversation each")
    injected = _storm(simulator_url)
    replies: dict[int, tuple[str, str]] = {}
    for number in range(REPLIES_PER_PLATFORM):
        for platform in PLATFORMS:
            text = f"Reply {number} on {platform} {REPLY_MARKER}"
            replies[site.reply(conversations[platform], text)] = (platform, text)
    started = time.monotonic()
    storm = seconds_until(lambda: evidence.only_the_sweep_left(site.database_url, replies), BOUND)
    # The clock starts now, so its first sweep runs at once, not at the next whole minute.
    site.stack.start("clock")
    settled = seconds_until(lambda: evidence.all_settled(site.database_url, replies), SWEPT)
    settled = None if storm is None or settled is None else time.monotonic() - started

    outcomes = evidence.replies(site.database_url, replies)
    # A held request is journaled when the simulator answers it, which may come after
    # its webhooks settled the reply.
    time.sleep(HELD)
    sends = evidence.platform_requests(simulator_url)
    left = requests.get(f"{simulator_url}/_simulator/faults", timeout=5).json()["faults"]
    accepted = {
        message_id: evidence.times_accepted(sends, text)
        for message_id, (_, text) in replies.items()
    }
    per_platform = {}
    for platform in PLATFORMS:
        mine = [m for m, (p, _) in replies.items() if p == platform]
        calls = [entry for entry in sends if entry["platform"] == platform]
        calls_limit, window = LIMITS[platform]
        per_platform[platform] = {
            "replies": len(mine),
            "outcomes": collections.Counter(outcomes[m].outcome() for m in mine),
            "platform_calls": len(calls),
            "platform_answers": collections.Counter(evidence.answer(entry) for entry in calls),
            "faults_injected": injected[platform],
            "faults_left_unused": sum(f["count"] for f in left if f["platform"] == platform),
            "limit": f"{calls_limit} calls / {window:g} s",
            "busiest_window": evidence.busiest_window([e["at"] for e in calls], window),
        }
    throttled_beyond_faults = {
        platform: sum(evidence.throttled(e) for e in sends if e["platform"] == platform)
        - (figures["faults_injected"]["429"] - _left(left, platform, "429"))
        for platform, figures in per_platform.items()
    }
    figures = {
        "replies": len(replies),
        "replies_sent": sum(reply.status in SENT for reply in outcomes.values()),
        "replies_failed": sum(reply.status == "FAILED" for reply in outcomes.values()),
        "replies_pending": sum(reply.status == "PENDING" for reply in outcomes.values()),
        "replies_accepted_twice_by_the_platform": sum(n > 1 for n in accepted.values()),
        "replies_failed_though_the_platform_accepted_them": sum(
            reply.status == "FAILED" and accepted[message_id] == 1
            for message_id, reply in outcomes.items()
        ),
        "echoes_stored_as_other_messages": evidence.unlinked_echoes(site.database_url, replies),
        "refused_as_over_the_rate_limit_beyond_the_injected_429s": throttled_beyond_faults,
        "platforms": per_platform,
        "storm_over_seconds": storm,
        "all_replies_settled_seconds": settled,
    }
    line = report("platform_faults", figures)
    assert settled is not None, line
    assert all(n <= 1 for n in accepted.values()), line
    assert figures["replies_failed_though_the_platform_accepted_them"] == 0, line
    assert figures["echoes_stored_as_other_messages"] == 0, line
    for message_id, reply in outcomes.items():
        assert reply.status in SENT | {"FAILED"}, line
        assert reply.status == "FAILED" or accepted[message_id] == 1, line
        assert reply.status in SENT or (reply.error_code is not None and reply.error_message), line
    for platform, platform_figures in per_platform.items():
        assert platform_figures["busiest_window"] <= LIMITS[platform][0], line
        assert throttled_beyond_faults[platform] == 0, line


def _storm(simulator_url: str) -> dict[str, collections.Counter]:
    """Queue the faults on every platform's send endpoint; what was injected, per platform."""
    injected = {}
    for platform in PLATFORMS:
        kinds = collections.Counter()
        for storm_round in range(ROUNDS[platform]):
            refusal = ("outside_window",) if storm_round == ROUNDS[platform] // 2 else ()
            for kind in ("429", "5xx", "timeout", *refusal):
                fault = {"platform": platform, "kind": kind, "retry_after": 1, "delay": HELD}
                response = requests.post(
                    f"{simulator_url}/_simulator/faults", json=fault, timeout=5
                )
                response.raise_for_status()
                kinds[kind] += 1
        injected[platform] = kinds
    return injected


def _left(faults: list[dict], platform: str, kind: str) -> int:
    return sum(f["count"] for f in faults if f["platform"] == platform and f["kind"] == kind)


def test_a_tiktok_reply_whose_answer_was_lost_is_settled_by_its_echo(connections):
    _ingest("tiktok", payload("tiktok", "im_receive_msg"))
    echo = payload("tiktok", "im_send_msg")
    content = json.loads(echo["content"])
    reply, _ = messages.create_outbound(
        Conversation.get(), user_id=None, content=content["text"]["body"]
    )
    settle_by = utcnow() + datetime.timedelta(minutes=10)
    messages.record_unconfirmed(reply.id, "TikTok did not answer in time.", settle_by=settle_by)
    # TikTok stamps the echo when it took the message: after the reply was written.
    content["timestamp"] = int((time.time() + 1) * 1000)
    echo["content"] = json.dumps(content)
    _ingest("tiktok", echo)
    outbound = Message.select().where(Message.direction == Direction.OUTBOUND)
    assert [(m.id, m.status, m.external_id, m.error_code) for m in outbound] == [
        (reply.id, MessageStatus.SENT, content["message_id"], None)
    ]


def _ingest(platform: str, document: dict) -> None:
    body = tiktok_body(document).decode()
    ingest_webhooks.fn([[uuid.uuid4().hex, platform, body, time.time()]])
