"""The clock's sweep: nothing PENDING waits forever, and nothing unconfirmed is sent twice."""

import datetime
import json

import pytest
import responses
from apscheduler.schedulers.background import BackgroundScheduler

from app import live, messages
from app.db import utcnow
from app.models import Message, MessageStatus
from app.platforms.errors import ErrorCode
from tests.platform_fakes import SEND_URLS, conversation, reload, reply, whatsapp_sent
from workers.broker import OUTBOUND, broker
from workers.outbound import SWEEP_GRACE, sweep_sends

URL = SEND_URLS["whatsapp"]


@pytest.fixture
def thread(org, connections):
    return conversation(org, connections["whatsapp"])


def queued_sends() -> list[int]:
    """The message ids of the send jobs waiting in the outbound queue."""
    raw = broker.client.hgetall(f"{broker.namespace}:{OUTBOUND}.msgs")
    return sorted(json.loads(job)["args"][0] for job in raw.values())


def aged(message: Message, minutes: float, **fields) -> Message:
    """``message`` as if it was created ``minutes`` ago (and with ``fields`` set)."""
    created = utcnow() - datetime.timedelta(minutes=minutes)
    Message.update(created_at=created, **fields).where(Message.id == message.id).execute()
    return reload(message)


@responses.activate
def test_a_reply_whose_job_was_lost_is_queued_again_and_sent(worker, thread, user):
    responses.post(URL, json=whatsapp_sent("wamid.FOUND"))
    lost = aged(reply(thread, user), minutes=5)

    sweep_sends.fn()
    worker.drain()

    assert reload(lost).external_id == "wamid.FOUND"


def test_a_reply_queued_moments_ago_is_left_to_its_job(thread, user):
    reply(thread, user)

    sweep_sends.fn()

    assert queued_sends() == []


def test_a_reply_waiting_for_a_token_or_a_retry_is_left_alone(thread, user):
    later = utcnow() + datetime.timedelta(hours=3)
    aged(reply(thread, user), minutes=30, send_after=later)

    sweep_sends.fn()

    assert queued_sends() == []


def test_a_claim_keeps_the_sweep_away_until_it_has_run_out(thread, user):
    message = aged(reply(thread, user), minutes=10)
    # A claim an older SNORQ took and left behind, without the in-flight mark.
    leased = utcnow() + datetime.timedelta(minutes=1)
    Message.update(send_lease_until=leased).where(Message.id == message.id).execute()

    sweep_sends.fn()
    assert queued_sends() == []

    expired = utcnow() - SWEEP_GRACE - datetime.timedelta(seconds=1)
    Message.update(send_lease_until=expired).where(Message.id == message.id).execute()
    sweep_sends.fn()
    assert queued_sends() == [message.id]


def test_a_reply_queued_again_is_not_queued_again_by_the_next_sweep(thread, user):
    message = aged(reply(thread, user), minutes=5)

    sweep_sends.fn()
    sweep_sends.fn()

    assert queued_sends() == [message.id]


@responses.activate
def test_a_send_that_died_mid_call_is_never_resent_and_fails_once_its_wait_is_over(
    worker, org, thread, user
):
    message = aged(reply(thread, user), minutes=30)
    # What a worker leaves behind when it dies during the platform call.
    settle_by = utcnow() + datetime.timedelta(minutes=5)
    messages.claim_send(message.id, "Sending to WhatsApp; …", settle_by=settle_by)

    sweep_sends.fn()
    worker.drain()
    assert reload(message).status == MessageStatus.PENDING

    Message.update(send_lease_until=utcnow() - datetime.timedelta(seconds=1)).where(
        Message.id == message.id
    ).execute()
    sweep_sends.fn()
    worker.drain()

    failed = reload(message)
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, ErrorCode.SEND_UNCONFIRMED)
    assert "may have been delivered" in failed.error_message
    assert not responses.calls
    events, _ = live.events_since(org.id, 0)
    assert [event["type"] for event in events] == ["message:status"]


def test_a_webhook_that_settled_an_unconfirmed_send_leaves_nothing_to_fail(thread, user):
    message = reply(thread, user)
    past = utcnow() - datetime.timedelta(minutes=1)
    messages.record_unconfirmed(message.id, "No answer", settle_by=past)
    messages.record_sent(message, "wamid.FROM_STATUS_WEBHOOK")

    sweep_sends.fn()

    settled = reload(message)
    assert (settled.status, settled.error_code) == (MessageStatus.SENT, None)


def test_a_reply_pending_for_a_day_fails_with_a_reason(thread, user):
    message = aged(reply(thread, user), minutes=25 * 60)

    sweep_sends.fn()

    failed = reload(message)
    assert (failed.status, failed.error_code) == (
        MessageStatus.FAILED,
        ErrorCode.PLATFORM_UNAVAILABLE,
    )
    assert failed.error_message == (
        "SNORQ could not send this message within 24 hours; send it again if it still matters."
    )
    assert queued_sends() == []


@pytest.mark.parametrize("sweep", ["send-sweep", "webhook-sweep"])
def test_the_clock_sweeps_every_minute(sweep):
    from scheduler.jobs import add_jobs

    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler)

    job = scheduler.get_job(sweep)
    assert str(job.trigger) == "cron[minute='*/1']"
