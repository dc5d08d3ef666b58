import time

import redis

from app import live
from app.db import database


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_healthz_answers_without_dependencies(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_is_ok_when_database_broker_and_live_events_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "live_events": "ok"},
    }


def test_readyz_names_an_unreachable_broker(client, monkeypatch):
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr("app.web.health.get_redis", lambda: unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert (checks["database"], checks["live_events"]) == ("ok", "ok")
    assert checks["broker"] == "unreachable (ConnectionError)"


def test_readyz_names_an_unreachable_database(client, monkeypatch):
    from peewee import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(database.obj, "execute_sql", refuse)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {
        "database": "unreachable (OperationalError)",
        "broker": "ok",
        "live_events": "ok",
    }


def test_readyz_names_live_events_that_cannot_be_published(client, monkeypatch):
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr("app.live.get_redis", lambda: unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {
            "database": "ok",
            "broker": "ok",
            "live_events": "unreachable (ConnectionError)",
        },
    }


def test_readyz_names_a_lost_live_event_subscription(client, monkeypatch):
    monkeypatch.setattr(live.hub, "_thread", object())
    monkeypatch.setattr(live.hub, "listening", False)
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["live_events"] == "unavailable (subscription lost; reconnecting)"
    assert (checks["database"], checks["broker"]) == ("ok", "ok")


def test_readyz_is_ok_once_a_page_subscribed_to_live_events(client):
    with live.hub.subscription(organization_id=1):
        assert wait_until(lambda: live.hub.listening)
        assert client.get("/readyz").status_code == 200
