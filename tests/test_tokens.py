"""Refreshing tokens: one platform call per stale token, NEEDS_REAUTH, retries, no leaks."""

import datetime
import json
import logging
import threading
import time

import pytest
import responses

from app import connections, live
from app.config import get_settings
from app.db import database, is_postgres, utcnow
from app.models import ALL_MODELS, AuditLog, ConnectionStatus, MessageStatus, PlatformConnection
from app.platforms.base import Grant, TokenSet
from app.platforms.errors import ErrorCode, TemporaryError
from app.redis_client import get_redis
from tests.fixtures import make_connection
from tests.platform_fakes import (
    SEND_URLS,
    conversation,
    graph_error,
    reload,
    reply,
    tiktok_answer,
    tiktok_sent,
    whatsapp_sent,
)
from tests.test_oauth import CODE, fake_facebook, fake_tiktok, sign_in, start
from workers import tokens
from workers.outbound import send_message
from workers.tokens import refresh_access_token, refresh_connection

TIKTOK = "https://business-api.tiktok.test/open_api/v1.3"
REFRESH_URL = f"{TIKTOK}/tt_user/oauth2/refresh_token/"
STALE = "tiktok-access-token"


@pytest.fixture
def fake():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def refreshed(access: str = "tt-access-2", refresh: str = "tt-refresh-2") -> dict:
    """TikTok's answer to a successful refresh (the refresh token rotates)."""
    return {
        "code": 0,
        "message": "OK",
        "request_id": "202611250000000000003",
        "data": {
            "open_id": "7312345678901",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 86400,
            "refresh_token_expires_in": 31536000,
        },
    }


def expiring_tiktok(org, minutes: int = 30):
    return make_connection(
        org,
        "tiktok",
        refresh_token="tt-refresh-1",
        token_expires_at=utcnow() + datetime.timedelta(minutes=minutes),
    )


def status_events(org) -> list[dict]:
    events, _ = live.events_since(org.id, 0)
    return [e["data"]["connection"] for e in events if e["type"] == "connection:status"]


def test_tiktok_refresh_sends_the_refresh_token_and_stores_the_new_pair(org, fake):
    connection = expiring_tiktok(org)
    fake.post(REFRESH_URL, json=refreshed())
    before = utcnow()

    assert refresh_access_token(connection.id, STALE) == "tt-access-2"

    (call,) = fake.calls
    assert (call.request.method, call.request.url) == ("POST", REFRESH_URL)
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body) == {
        "client_id": "tt-client-key",
        "client_secret": "tt-client-secret",
        "grant_type": "refresh_token",
        "refresh_token": "tt-refresh-1",
    }
    connection = PlatformConnection.get_by_id(connection.id)
    assert (connection.access_token(), connection.refresh_token()) == (
        "tt-access-2",
        "tt-refresh-2",
    )
    assert connection.token_expires_at >= before + datetime.timedelta(days=1)
    assert connection.refresh_expires_at >= before + datetime.timedelta(days=365)
    entry = AuditLog.get()
    assert (entry.action, entry.ok, entry.connection_id) == ("token_refresh", True, connection.id)
    assert entry.detail.startswith("expires ")


def test_a_token_another_process_already_replaced_is_returned_without_a_platform_call(org, fake):
    connection = expiring_tiktok(org)
    assert refresh_access_token(connection.id, "an-older-token") == STALE
    assert len(fake.calls) == 0


def test_concurrent_refresh_requests_make_one_platform_call(org, fake):
    connection = expiring_tiktok(org)

    def slow_refresh(request):
        time.sleep(0.3)
        return 200, {}, json.dumps(refreshed())

    fake.add_callback(responses.POST, REFRESH_URL, callback=slow_refresh)
    start = threading.Barrier(6)
    results = []

    def ask():
        start.wait()
        with database.connection_context():
            results.append(refresh_access_token(connection.id, STALE))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["tt-access-2"] * 6
    assert len(fake.calls) == 1
    assert AuditLog.select().count() == 1


@pytest.mark.parametrize(
    ("platform", "answer", "reason", "outcome"),
    [
        (
            "tiktok",
            {"code": 40105, "message": "Access token is incorrect or has been revoked."},
            "TikTok error 40105: Access token is incorrect or has been revoked.",
            "TOKEN_EXPIRED (2001, platform code 40105)",
        ),
        (
            "tiktok",
            {"code": 40002, "message": "refresh_token is invalid."},
            "TikTok error 40002: refresh_token is invalid.",
            "REJECTED (2010, platform code 40002)",
        ),
        (
            "whatsapp",
            None,
            "Meta no longer accepts this WhatsApp token; reconnect the account.",
            "TOKEN_EXPIRED (2001)",
        ),
        (
            "facebook",
            None,
            "Meta no longer accepts this Messenger token; reconnect the account.",
            "TOKEN_EXPIRED (2001)",
        ),
    ],
    ids=["tiktok-revoked", "tiktok-refresh-token-refused", "whatsapp", "facebook"],
)
def test_a_definitive_refusal_marks_the_connection_needs_reauth(
    org, fake, platform, answer, reason, outcome
):
    connection = make_connection(org, platform, refresh_token="tt-refresh-1")
    if answer is not None:
        fake.post(REFRESH_URL, json={**answer, "request_id": "r1"})

    assert refresh_access_token(connection.id, f"{platform}-access-token") is None

    connection = PlatformConnection.get_by_id(connection.id)
    assert (connection.status, connection.status_reason) == (ConnectionStatus.NEEDS_REAUTH, reason)
    assert [(e["id"], e["status"]) for e in status_events(org)] == [(connection.id, "NEEDS_REAUTH")]
    entry = AuditLog.get()
    assert (entry.action, entry.ok) == ("token_refresh", False)
    assert entry.detail == f"needs reconnecting: {outcome}"
    assert len(fake.calls) == (0 if answer is None else 1)


def test_a_tiktok_connection_without_a_refresh_token_needs_a_person(org, fake):
    connection = make_connection(org, "tiktok")
    assert refresh_access_token(connection.id, STALE) is None
    assert PlatformConnection.get_by_id(connection.id).status == ConnectionStatus.NEEDS_REAUTH
    assert len(fake.calls) == 0


def test_a_connection_that_needs_a_person_is_not_refreshed_again(org, fake):
    connection = expiring_tiktok(org)
    PlatformConnection.update(status=ConnectionStatus.NEEDS_REAUTH).execute()
    assert refresh_access_token(connection.id, STALE) is None
    assert len(fake.calls) == 0
    assert status_events(org) == []


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (
            {"status": 503, "body": "<html>upstream unavailable</html>"},
            ErrorCode.PLATFORM_UNAVAILABLE,
        ),
        (
            {"json": {"code": 40100, "message": "Too many requests.", "request_id": "r2"}},
            ErrorCode.RATE_LIMITED,
        ),
        (
            {"json": {"code": 51000, "message": "System error.", "request_id": "r3"}},
            ErrorCode.PLATFORM_UNAVAILABLE,
        ),
    ],
    ids=["http-503", "throttled", "tiktok-system-error"],
)
def test_a_transient_failure_is_raised_and_leaves_the_connection_active(org, fake, answer, code):
    connection = expiring_tiktok(org)
    fake.post(REFRESH_URL, **answer)
    with pytest.raises(TemporaryError) as raised:
        refresh_access_token(connection.id, STALE)
    assert raised.value.code == code
    connection = PlatformConnection.get_by_id(connection.id)
    assert (connection.status, connection.access_token()) == (ConnectionStatus.ACTIVE, STALE)
    assert AuditLog.get().detail.startswith(f"will retry: {code.name} ({int(code)}")


def test_a_refresh_that_waits_too_long_for_another_is_tried_again_later(org, monkeypatch):
    connection = expiring_tiktok(org)
    monkeypatch.setattr(tokens, "WAIT_SECONDS", 0.2)
    held = get_redis().lock(f"snorq:token-refresh:{connection.id}", timeout=10)
    assert held.acquire()
    try:
        with pytest.raises(TemporaryError, match="still running"):
            refresh_access_token(connection.id, STALE)
    finally:
        held.release()


def test_the_scheduled_refresh_retries_a_transient_failure_with_backoff(org, fake, worker):
    connection = expiring_tiktok(org)
    fake.post(REFRESH_URL, status=502, body="bad gateway")
    fake.post(REFRESH_URL, json=refreshed())
    refresh_connection.send(connection.id)

    deadline = time.monotonic() + 20
    while PlatformConnection.get_by_id(connection.id).access_token() == STALE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [c.response.status_code for c in fake.calls] == [502, 200]


def test_the_scheduled_refresh_skips_a_connection_refreshed_meanwhile(org, fake):
    connection = expiring_tiktok(org, minutes=24 * 60)
    refresh_connection(connection.id)
    assert len(fake.calls) == 0


# -- nothing in plain text ----------------------------------------------------------

SECRET_TOKENS = [
    "tt-access-1",
    "tt-refresh-1",
    "tt-access-2",
    "tt-refresh-2",
    "fb-short-user-token",
    "fb-long-user-token",
    "page-token-1001",
]


def test_no_token_appears_in_the_database_or_the_logs_in_plain_text(
    client, user, org, fake, worker, caplog
):
    caplog.set_level(logging.DEBUG)
    fake_tiktok(fake)
    fake_facebook(fake, pages=[{"id": "1001", "name": "Acme", "access_token": "page-token-1001"}])
    fake.post(REFRESH_URL, json=refreshed())
    fake.post(REFRESH_URL, status=200, json={"code": 40105, "message": "Revoked."})
    sign_in(client, user)
    for platform in ("tiktok", "facebook"):
        state = start(client, platform)
        client.get(f"/api/v1/platforms/callback/{platform}?code={CODE}&state={state}")
    worker.drain()
    tiktok = PlatformConnection.get(PlatformConnection.platform == "tiktok")
    assert refresh_access_token(tiktok.id, "tt-access-1") == "tt-access-2"
    assert refresh_access_token(tiktok.id, "tt-access-2") is None
    assert PlatformConnection.get(PlatformConnection.platform == "facebook").access_token() == (
        "page-token-1001"
    )

    rows = repr([list(model.select().tuples()) for model in ALL_MODELS])
    logs = caplog.text + "\n".join(record.getMessage() for record in caplog.records)
    files = b""
    if not is_postgres():
        database.execute_sql("PRAGMA wal_checkpoint(FULL)")
        instance = get_settings().sqlite_path.parent
        files = b"".join(path.read_bytes() for path in instance.glob("snorq.db*"))
    for token in SECRET_TOKENS:
        assert token not in rows
        assert token not in logs
        assert token.encode() not in files


# -- what it means for sends --------------------------------------------------------


def test_a_send_on_a_connection_that_needs_a_person_fails_at_once(org, user, fake, worker):
    connection = make_connection(
        org, "whatsapp", status=ConnectionStatus.NEEDS_REAUTH, status_reason="Token revoked."
    )
    message = reply(conversation(org, connection), user)
    send_message.send(message.id)
    worker.drain()

    failed = reload(message)
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, ErrorCode.TOKEN_EXPIRED)
    assert "must be reconnected" in failed.error_message
    assert len(fake.calls) == 0


@pytest.mark.parametrize(
    "refused",
    [
        {"json": tiktok_answer(code=40105, message="Access token is incorrect or revoked.")},
        {"json": tiktok_answer(code=40104, message="Access token has expired.")},
        {"status": 401, "body": "Unauthorized"},
    ],
    ids=["40105", "40104", "http-401"],
)
def test_a_tiktok_token_expired_mid_send_is_refreshed_once_and_the_send_retried(
    org, user, fake, worker, refused
):
    connection = expiring_tiktok(org)
    fake.post(SEND_URLS["tiktok"], **refused)
    fake.post(SEND_URLS["tiktok"], json=tiktok_sent("7401234567890123456"))
    fake.post(REFRESH_URL, json=refreshed())
    message = reply(conversation(org, connection), user)
    send_message.send(message.id)
    worker.drain()

    first, refresh, second = fake.calls
    assert first.request.headers["Access-Token"] == STALE
    assert refresh.request.url == REFRESH_URL
    assert second.request.headers["Access-Token"] == "tt-access-2"
    sent = reload(message)
    assert (sent.status, sent.external_id) == (MessageStatus.SENT, "7401234567890123456")


def test_a_tiktok_token_refused_again_after_one_refresh_fails_the_reply(org, user, fake, worker):
    connection = expiring_tiktok(org)
    fake.post(SEND_URLS["tiktok"], json=tiktok_answer(code=40105, message="Revoked."))
    fake.post(REFRESH_URL, json=refreshed())
    message = reply(conversation(org, connection), user)
    send_message.send(message.id)
    worker.drain()

    assert [call.request.url for call in fake.calls] == [
        SEND_URLS["tiktok"],
        REFRESH_URL,
        SEND_URLS["tiktok"],
    ]
    failed = reload(message)
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, ErrorCode.TOKEN_EXPIRED)


def test_a_meta_token_refused_mid_send_needs_a_person_until_reconnected(org, user, fake, worker):
    connection = make_connection(org, "whatsapp")
    thread = conversation(org, connection)
    expired = graph_error(190, "Error validating access token: Session has expired.", 463)
    fake.post(SEND_URLS["whatsapp"], status=401, json=expired)

    first = reply(thread, user, "First")
    send_message.send(first.id)
    worker.drain()
    assert (reload(first).status, reload(first).error_code) == (MessageStatus.FAILED, 2001)
    assert PlatformConnection.get_by_id(connection.id).status == ConnectionStatus.NEEDS_REAUTH
    assert [e["status"] for e in status_events(org)] == ["NEEDS_REAUTH"]

    second = reply(thread, user, "Second")
    send_message.send(second.id)
    worker.drain()
    assert reload(second).error_code == ErrorCode.TOKEN_EXPIRED
    assert len(fake.calls) == 1

    grant = Grant(connection.account_id, "Acme", TokenSet("wa-new-business-token"))
    connections.connect(org.id, "whatsapp", grant)
    fake.replace(responses.POST, SEND_URLS["whatsapp"], json=whatsapp_sent("wamid.NEW"))
    third = reply(thread, user, "Third")
    send_message.send(third.id)
    worker.drain()
    assert reload(third).status == MessageStatus.SENT
    assert fake.calls[-1].request.headers["Authorization"] == "Bearer wa-new-business-token"
