"""Delayed jobs a live worker forgot go back on their delay queue (Bogdanp/dramatiq#527)."""

import time
import uuid

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from dramatiq.common import dq_name

from app.config import get_settings
from app.models import Message
from tests.payloads import payload
from tests.support import meta_body
from workers.broker import INBOUND, broker
from workers.delay_queues import requeue_forgotten
from workers.inbound import ingest_webhooks

DELAY_QUEUE = dq_name(INBOUND)


def held() -> set[bytes]:
    """The delayed inbound jobs this process's broker fetched and has not acknowledged."""
    return broker.client.smembers(f"{broker.namespace}:__acks__.{broker.broker_id}.{DELAY_QUEUE}")


def forgotten_retry(external_id: str) -> None:
    """An inbound retry a live worker fetched, then forgot as its connection failed.

    Only the worker's ack set remembers it, as Dramatiq 2.2.1 leaves it.
    """
    document = payload("whatsapp", "text")
    document["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = external_id
    delivery = [uuid.uuid4().hex, "whatsapp", meta_body(document).decode(), time.time()]
    broker.enqueue(ingest_webhooks.message([delivery]), delay=1)
    time.sleep(0.01)
    assert len(broker.do_fetch(DELAY_QUEUE, 10)) == 1


@pytest.fixture
def grace(monkeypatch):
    """Sets ``SNORQ_DELAYED_JOB_GRACE`` (seconds)."""

    def set_grace(seconds: int) -> None:
        monkeypatch.setenv("SNORQ_DELAYED_JOB_GRACE", str(seconds))
        get_settings.cache_clear()

    return set_grace


def test_a_delayed_job_a_live_worker_forgot_is_put_back_and_runs_once(connections, grace, request):
    forgotten_retry("wamid.FORGOTTEN")
    grace(0)

    assert requeue_forgotten() == 1
    assert held() == set()
    assert requeue_forgotten() == 0
    request.getfixturevalue("worker").drain()

    assert [message.external_id for message in Message.select()] == ["wamid.FORGOTTEN"]


def test_a_delayed_job_within_its_grace_is_left_to_its_worker(grace):
    forgotten_retry("wamid.NOT_YET")
    grace(120)

    assert requeue_forgotten() == 0
    assert len(held()) == 1


def test_the_clock_itself_puts_forgotten_jobs_back_every_minute():
    from scheduler.jobs import add_jobs

    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler)

    job = scheduler.get_job("delayed-jobs")
    assert str(job.trigger) == "cron[minute='*/1']"
    assert job.args == ("delayed-jobs", 1, requeue_forgotten)
