"""The clock's token refresh: which connections are due, and one run however many clocks."""

import datetime
import json
import threading

import pytest
import responses
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from app.config import get_settings
from app.db import utcnow
from app.models import ConnectionStatus, PlatformConnection
from scheduler.jobs import TOKEN_REFRESH_MINUTES, add_jobs, run_once
from tests.fixtures import make_connection
from workers.broker import broker
from workers.tokens import enqueue_due_refreshes

REFRESH_URL = "https://business-api.tiktok.test/open_api/v1.3/tt_user/oauth2/refresh_token/"
MARGIN = datetime.timedelta(hours=6)


def connection(org, account_id: str, *, expires_in: datetime.timedelta | None, **fields):
    expires_at = None if expires_in is None else utcnow() + expires_in
    platform = fields.pop("platform", "tiktok")
    return make_connection(org, platform, account_id, token_expires_at=expires_at, **fields)


@pytest.fixture
def due_and_not(org):
    """Connections on either side of the 6 h margin, by whether the clock should pick them."""
    hour = datetime.timedelta(hours=1)
    due = [
        connection(org, "soon", expires_in=2 * hour, refresh_token="r"),
        connection(org, "almost-margin", expires_in=MARGIN - hour, refresh_token="r"),
        connection(org, "already-expired", expires_in=-hour, refresh_token="r"),
        connection(org, "expired-no-refresh", expires_in=-hour, platform="whatsapp"),
    ]
    not_due = [
        connection(org, "later", expires_in=MARGIN + hour, refresh_token="r"),
        connection(org, "never", expires_in=None, platform="facebook"),
        connection(org, "unrefreshable-soon", expires_in=hour, platform="whatsapp"),
        connection(
            org,
            "needs-a-person",
            expires_in=hour,
            refresh_token="r",
            status=ConnectionStatus.NEEDS_REAUTH,
        ),
    ]
    return due, not_due


def queued_refreshes() -> list[int]:
    raw = broker.client.hgetall(f"{broker.namespace}:maintenance.msgs").values()
    messages = [json.loads(message) for message in raw]
    return sorted(m["args"][0] for m in messages if m["actor_name"] == "refresh_connection")


def test_the_clock_enqueues_exactly_the_connections_due_within_the_margin(due_and_not):
    due, _ = due_and_not
    assert enqueue_due_refreshes() == len(due)
    assert queued_refreshes() == sorted(c.id for c in due)


def test_the_margin_is_configurable(org, monkeypatch):
    soon = connection(
        org, "in-two-hours", expires_in=datetime.timedelta(hours=2), refresh_token="r"
    )
    monkeypatch.setenv("SNORQ_TOKEN_REFRESH_MARGIN", "3600")
    get_settings.cache_clear()
    assert enqueue_due_refreshes() == 0
    monkeypatch.setenv("SNORQ_TOKEN_REFRESH_MARGIN", str(3 * 3600))
    get_settings.cache_clear()
    assert enqueue_due_refreshes() == 1
    assert queued_refreshes() == [soon.id]


def test_the_refresh_job_runs_every_few_minutes_on_the_minute():
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler)
    job = scheduler.get_job("token-refresh")
    assert isinstance(job.trigger, CronTrigger)
    assert str(job.trigger) == f"cron[minute='*/{TOKEN_REFRESH_MINUTES}']"
    assert job.args == ("token-refresh", TOKEN_REFRESH_MINUTES, enqueue_due_refreshes)


def test_a_refresh_enqueued_twice_calls_the_platform_once(org, worker):
    due = connection(org, "soon", expires_in=datetime.timedelta(hours=1), refresh_token="r")
    with responses.RequestsMock() as fake:
        data = {"access_token": "new", "refresh_token": "rr", "expires_in": 86400}
        fake.post(REFRESH_URL, json={"code": 0, "message": "OK", "data": data})
        enqueue_due_refreshes()
        enqueue_due_refreshes()
        worker.drain()
        assert len(fake.calls) == 1
    assert PlatformConnection.get_by_id(due.id).access_token() == "new"


def test_two_clocks_firing_together_refresh_each_connection_once(org, worker):
    soon = [
        connection(org, f"acct-{n}", expires_in=datetime.timedelta(hours=1), refresh_token=f"r{n}")
        for n in range(3)
    ]
    together = threading.Barrier(2)
    ran = []

    def clock():
        together.wait()
        ran.append(run_once("token-refresh", TOKEN_REFRESH_MINUTES, enqueue_due_refreshes))

    with responses.RequestsMock() as fake:
        answers = iter(range(100))

        def refresh(request):
            n = next(answers)
            data = {"access_token": f"new-{n}", "refresh_token": f"rr-{n}", "expires_in": 86400}
            return 200, {}, json.dumps({"code": 0, "message": "OK", "data": data})

        fake.add_callback(responses.POST, REFRESH_URL, callback=refresh)
        clocks = [threading.Thread(target=clock) for _ in range(2)]
        for thread in clocks:
            thread.start()
        for thread in clocks:
            thread.join()
        worker.drain()

        assert sorted(ran) == [False, True]
        sent = sorted(json.loads(call.request.body)["refresh_token"] for call in fake.calls)
        assert sent == ["r0", "r1", "r2"]
    for row in PlatformConnection.select().where(PlatformConnection.id.in_([c.id for c in soon])):
        assert row.access_token().startswith("new-")
