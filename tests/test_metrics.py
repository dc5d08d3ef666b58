"""``/metrics``: who may scrape it, and that each metric moves when its event happens.

Each test scrapes before and after the event and compares, as Prometheus would:
counters only ever grow, and other tests in the same process moved them too.
The suite runs embedded or on real servers in one process, so this is the
embedded ``/metrics``: web and worker together.
"""

import dataclasses
import datetime
import re
from pathlib import Path

import dramatiq
import pytest
import redis
import requests
import responses
import yaml
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from app.db import utcnow
from app.models import ConnectionStatus, MessageStatus
from app.platforms.errors import TemporaryError
from tests.fixtures import make_connection
from tests.payloads import payload
from tests.platform_fakes import (
    SEND_URLS,
    conversation,
    fast_retries,  # noqa: F401  (a fixture)
    graph_error,
    reload,
    reply,
    whatsapp_sent,
)
from tests.support import signed
from tests.test_live_socket import (
    ORIGIN,
    connect,
    server,  # noqa: F401  (a fixture)
    session_cookie,
    wait_until,
)
from workers import exporter as workers_exporter
from workers.broker import broker
from workers.outbound import send_message, send_typing
from workers.tokens import refresh_access_token

TOKEN = "metrics-scrape-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ALERTS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"
TIKTOK_REFRESH_URL = "https://business-api.tiktok.test/open_api/v1.3/tt_user/oauth2/refresh_token/"
WEBHOOKS = {
    "whatsapp": payload("whatsapp", "text"),
    "facebook": payload("facebook", "message"),
    "tiktok": payload("tiktok", "im_receive_msg"),
}


@pytest.fixture
def app(app):
    """The app with a metrics token (the suite's environment sets none)."""
    settings = app.config["SNORQ_SETTINGS"]
    app.config["SNORQ_SETTINGS"] = dataclasses.replace(settings, metrics_token=TOKEN)
    return app


class Scrape:
    """One scrape of ``/metrics``: each sample's value by name and labels."""

    def __init__(self, client) -> None:
        response = client.get("/metrics", headers=BEARER)
        assert response.status_code == 200
        assert response.mimetype == "text/plain"
        self.text = response.get_data(as_text=True)
        families = list(text_string_to_metric_families(self.text))
        self.names = {family.name for family in families}
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in families
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def post_webhook(client, platform: str, payload_: dict | None = None):
    body, headers = signed(platform, payload_ or WEBHOOKS[platform])
    return client.post(f"/api/v1/webhooks/{platform}", data=body, headers=headers)


# -- who may scrape ---------------------------------------------------------------------


def test_without_a_configured_token_there_are_no_metrics(client):
    settings = client.application.config["SNORQ_SETTINGS"]
    client.application.config["SNORQ_SETTINGS"] = dataclasses.replace(settings, metrics_token="")
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x", "Bearer"],
    ids=["none", "wrong", "basic", "no-scheme", "longer", "empty"],
)
def test_a_scrape_without_the_token_is_refused(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "snorq_" not in response.get_data(as_text=True)


def test_the_token_opens_the_metrics(client):
    scrape = Scrape(client)
    assert "# TYPE snorq_webhooks_received_total counter" in scrape.text
    assert scrape.value("snorq_broker_reachable") == 1


def test_the_worker_exporter_answers_only_the_token():
    exporter = Client(workers_exporter.exporter(TOKEN))
    assert exporter.get("/metrics").status_code == 401
    assert exporter.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert exporter.get("/", headers=BEARER).status_code == 404
    answer = exporter.get("/metrics", headers=BEARER)
    assert answer.status_code == 200
    assert "# TYPE snorq_jobs_total counter" in answer.get_data(as_text=True)


def test_without_a_token_the_worker_exporter_does_not_start():
    assert workers_exporter.serve() == 0


# -- webhooks -----------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["whatsapp", "facebook", "tiktok"])
def test_an_acknowledged_webhook_counts_as_received_acknowledged_and_timed(client, platform):
    before = Scrape(client)
    assert post_webhook(client, platform).status_code == 200
    after = Scrape(client)

    assert moved(before, after, "snorq_webhooks_received_total", platform=platform) == 1
    assert moved(before, after, "snorq_webhooks_acknowledged_total", platform=platform) == 1
    assert moved(before, after, "snorq_webhook_ack_seconds_count", platform=platform) == 1
    assert moved(before, after, "snorq_queue_depth", queue="inbound") == 1
    refused = [name for (name, _) in after.samples if name == "snorq_webhooks_refused_total"]
    assert sum(moved(before, after, name) for name in refused) == 0


def test_a_webhook_with_a_bad_signature_is_counted_as_refused(client):
    body, headers = signed("facebook", WEBHOOKS["facebook"])
    headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64

    before = Scrape(client)
    assert client.post("/api/v1/webhooks/facebook", data=body, headers=headers).status_code == 401
    after = Scrape(client)

    labels = {"platform": "facebook", "reason": "bad_signature"}
    assert moved(before, after, "snorq_webhooks_refused_total", **labels) == 1
    assert moved(before, after, "snorq_webhooks_received_total", platform="facebook") == 1
    assert moved(before, after, "snorq_webhooks_acknowledged_total", platform="facebook") == 0


def test_a_webhook_over_the_size_limit_is_counted_as_refused(app, client):
    settings = app.config["SNORQ_SETTINGS"]
    app.config["SNORQ_SETTINGS"] = dataclasses.replace(settings, webhook_max_bytes=64)

    before = Scrape(client)
    assert post_webhook(client, "whatsapp").status_code == 413
    after = Scrape(client)

    labels = {"platform": "whatsapp", "reason": "too_large"}
    assert moved(before, after, "snorq_webhooks_refused_total", **labels) == 1


def test_a_webhook_the_queue_cannot_take_counts_an_enqueue_failure(client, monkeypatch):
    before = Scrape(client)
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    scripts = {name: unreachable.register_script(s.script) for name, s in broker.scripts.items()}
    monkeypatch.setattr(broker, "scripts", scripts)
    assert post_webhook(client, "whatsapp").status_code == 503
    monkeypatch.undo()
    after = Scrape(client)

    labels = {"platform": "whatsapp", "reason": "queue_unavailable"}
    assert moved(before, after, "snorq_webhooks_refused_total", **labels) == 1
    assert moved(before, after, "snorq_enqueue_failures_total", queue="inbound") == 1
    assert moved(before, after, "snorq_webhooks_acknowledged_total", platform="whatsapp") == 0
    assert moved(before, after, "snorq_webhook_ack_seconds_count", platform="whatsapp") == 0


def test_ingest_lag_is_observed_once_a_worker_commits_the_webhook(client, connections, worker):
    before = Scrape(client)
    assert post_webhook(client, "whatsapp").status_code == 200
    queued = Scrape(client)
    worker.drain()
    after = Scrape(client)

    assert moved(before, queued, "snorq_ingest_lag_seconds_count", platform="whatsapp") == 0
    assert moved(before, after, "snorq_ingest_lag_seconds_count", platform="whatsapp") == 1
    assert 0 < moved(before, after, "snorq_ingest_lag_seconds_sum", platform="whatsapp") < 20
    job = {"queue": "inbound", "actor": "ingest_webhooks"}
    assert moved(before, after, "snorq_jobs_total", **job, outcome="done") == 1
    assert after.value("snorq_queue_depth", queue="inbound") == 0


def test_a_webhook_for_an_unknown_account_is_counted(client, worker):
    before = Scrape(client)
    post_webhook(client, "tiktok")
    worker.drain()
    after = Scrape(client)

    labels = {"platform": "tiktok", "reason": "unknown_account"}
    assert moved(before, after, "snorq_webhooks_unprocessed_total", **labels) == 1


# -- queues ---------------------------------------------------------------------------------


def test_queue_depth_delayed_jobs_and_dead_letters_are_read_from_redis(
    client, monkeypatch, org, connections
):
    thread = conversation(org, connections["facebook"])

    def broken(conversation_id):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("workers.outbound.load_thread", broken)
    before = Scrape(client)
    send_typing.send(thread.id)
    running = dramatiq.Worker(broker, queues={"outbound"}, worker_threads=1, worker_timeout=100)
    running.start()
    try:
        broker.join("outbound", timeout=10_000)
        running.join()
    finally:
        running.stop(timeout=5_000)
    failed = Scrape(client)

    assert moved(before, failed, "snorq_dead_letters", queue="outbound") == 1
    job = {"queue": "outbound", "actor": "send_typing"}
    assert moved(before, failed, "snorq_jobs_dead_lettered_total", **job) == 1
    assert moved(before, failed, "snorq_jobs_total", **job, outcome="error") == 1

    send_typing.send(thread.id)
    send_typing.send_with_options(args=(thread.id,), delay=3_600_000)
    queued = Scrape(client)

    assert moved(failed, queued, "snorq_queue_depth", queue="outbound") == 1
    assert moved(failed, queued, "snorq_queue_delayed", queue="outbound") == 1


def test_queues_are_reported_unreachable_when_redis_does_not_answer(client, monkeypatch):
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(broker, "client", unreachable)
    scrape = Scrape(client)
    assert scrape.value("snorq_broker_reachable") == 0
    assert ("snorq_queue_depth", frozenset({("queue", "inbound")})) not in scrape.samples
    assert scrape.value("snorq_webhooks_received_total", platform="whatsapp") >= 0


# -- sends ------------------------------------------------------------------------------------


@pytest.fixture
def thread(org, connections):
    return conversation(org, connections["whatsapp"])


@pytest.mark.usefixtures("fast_retries")
@responses.activate
def test_a_send_retried_then_sent_counts_both_attempts(client, worker, thread, user):
    responses.post(SEND_URLS["whatsapp"], status=503, json=graph_error(2, "Service unavailable"))
    responses.post(SEND_URLS["whatsapp"], json=whatsapp_sent("wamid.OK"))

    before = Scrape(client)
    send_message.send(reply(thread, user).id)
    worker.drain()
    after = Scrape(client)

    sends = "snorq_sends_total"
    labels = {"platform": "whatsapp"}
    assert moved(before, after, sends, **labels, outcome="sent", code="") == 1
    assert (
        moved(before, after, sends, **labels, outcome="retried", code="PLATFORM_UNAVAILABLE") == 1
    )


@pytest.mark.parametrize(
    ("answer", "outcome", "code"),
    [
        (
            {"status": 400, "json": graph_error(131026, "Message undeliverable")},
            "failed",
            "INVALID_RECIPIENT",
        ),
        ({"body": requests.ReadTimeout("read timed out")}, "unconfirmed", "PLATFORM_UNAVAILABLE"),
    ],
    ids=["failed", "unconfirmed"],
)
@responses.activate
def test_a_send_that_ends_badly_counts_its_outcome_and_code(
    client, worker, thread, user, answer, outcome, code
):
    responses.post(SEND_URLS["whatsapp"], **answer)

    before = Scrape(client)
    send_message.send(reply(thread, user).id)
    worker.drain()
    after = Scrape(client)

    labels = {"platform": "whatsapp", "outcome": outcome, "code": code}
    assert moved(before, after, "snorq_sends_total", **labels) == 1


@responses.activate
def test_a_closed_window_counts_a_failed_send_without_a_platform_call(
    client, org, connections, user
):
    thread = conversation(org, connections["tiktok"], wrote_hours_ago=100)
    before = Scrape(client)
    send_message.fn(reply(thread, user).id)
    after = Scrape(client)

    labels = {"platform": "tiktok", "outcome": "failed", "code": "OUTSIDE_WINDOW"}
    assert moved(before, after, "snorq_sends_total", **labels) == 1
    assert not responses.calls


@responses.activate
def test_a_reply_waiting_for_a_rate_limit_token_is_counted(client, thread, user):
    responses.post(SEND_URLS["whatsapp"], json=whatsapp_sent("wamid.1"))
    connection = thread.connection
    connection.burst_limit = 1
    connection.save()
    first, second = reply(thread, user, "One"), reply(thread, user, "Two")

    before = Scrape(client)
    send_message.fn(first.id)
    send_message.fn(second.id)
    after = Scrape(client)

    assert reload(second).status == MessageStatus.PENDING
    labels = {"platform": "whatsapp", "call": "reply"}
    assert moved(before, after, "snorq_rate_limit_wait_seconds_count", **labels) == 1
    assert 0 < moved(before, after, "snorq_rate_limit_wait_seconds_sum", **labels) <= 1.5
    assert after.value("snorq_queue_delayed", queue="outbound") == 1


# -- tokens -------------------------------------------------------------------------------------


def expiring_tiktok(org):
    return make_connection(
        org,
        "tiktok",
        refresh_token="tt-refresh-1",
        token_expires_at=utcnow() + datetime.timedelta(minutes=30),
    )


@responses.activate
def test_a_token_refresh_is_counted(client, org):
    connection = expiring_tiktok(org)
    fresh = {
        "open_id": "7312345678901",
        "access_token": "tt-access-2",
        "refresh_token": "tt-refresh-2",
        "expires_in": 86400,
        "refresh_token_expires_in": 31536000,
    }
    responses.post(TIKTOK_REFRESH_URL, json={"code": 0, "message": "OK", "data": fresh})

    before = Scrape(client)
    assert refresh_access_token(connection.id, "tiktok-access-token") == "tt-access-2"
    after = Scrape(client)

    labels = {"platform": "tiktok", "outcome": "refreshed"}
    assert moved(before, after, "snorq_token_refreshes_total", **labels) == 1
    assert moved(before, after, "snorq_reauthorizations_needed_total", platform="tiktok") == 0


@responses.activate
def test_a_refused_refresh_counts_a_reauthorization_and_shows_the_connection(client, org):
    connection = expiring_tiktok(org)
    refused = {"code": 40002, "message": "refresh_token is invalid.", "request_id": "r1"}
    responses.post(TIKTOK_REFRESH_URL, json=refused)

    before = Scrape(client)
    assert refresh_access_token(connection.id, "tiktok-access-token") is None
    after = Scrape(client)

    labels = {"platform": "tiktok", "outcome": "refused"}
    assert moved(before, after, "snorq_token_refreshes_total", **labels) == 1
    assert moved(before, after, "snorq_reauthorizations_needed_total", platform="tiktok") == 1
    needs = {"platform": "tiktok", "status": ConnectionStatus.NEEDS_REAUTH}
    assert before.value("snorq_connections", **needs) == 0
    assert after.value("snorq_connections", **needs) == 1


@responses.activate
def test_a_refresh_the_platform_cannot_answer_now_is_counted(client, org):
    connection = expiring_tiktok(org)
    responses.post(TIKTOK_REFRESH_URL, status=503, body="unavailable")

    before = Scrape(client)
    with pytest.raises(TemporaryError):
        refresh_access_token(connection.id, "tiktok-access-token")
    after = Scrape(client)

    labels = {"platform": "tiktok", "outcome": "retry_later"}
    assert moved(before, after, "snorq_token_refreshes_total", **labels) == 1


# -- live pages ---------------------------------------------------------------------------------


def test_each_open_staff_page_counts_as_a_live_connection(app, client, server, user):  # noqa: F811
    def live() -> float:
        return Scrape(client).value("snorq_live_connections")

    before = live()
    ws = connect(server, Cookie=session_cookie(app, user), Origin=ORIGIN)
    assert wait_until(lambda: live() == before + 1)
    ws.close()
    assert wait_until(lambda: live() == before)


# -- alert rules --------------------------------------------------------------------------------


def test_every_alert_rule_is_well_formed_and_names_metrics_snorq_reports(client):
    rules = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    assert rules
    scrape = Scrape(client)
    reported = scrape.names | {name for (name, _) in scrape.samples}
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        named = set(re.findall(r"\bsnorq_\w+", rule["expr"]))
        unknown = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in named} - reported
        assert not unknown, f"{rule['alert']} names metrics SNORQ does not report: {unknown}"
