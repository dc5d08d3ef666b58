"""The send actor: retries, Retry-After, token refresh, unconfirmed sends, events, audit."""

import datetime
import time

import pytest
import requests
import responses

from app import live, messages
from app.config import get_settings
from app.db import utcnow
from app.models import AuditLog, ConnectionStatus, MessageStatus
from app.platforms.errors import ErrorCode
from app.serializers import timestamp
from tests.platform_fakes import (
    SEND_URLS,
    TIKTOK,
    conversation,
    fast_retries,  # noqa: F401  (a fixture)
    graph_error,
    reload,
    reply,
    tiktok_answer,
    tiktok_sent,
    whatsapp_sent,
)
from workers import outbound
from workers.outbound import retry_delay_ms, send_message

URL = SEND_URLS["whatsapp"]


@pytest.fixture
def thread(org, connections):
    return conversation(org, connections["whatsapp"])


def event_types(org) -> list[str]:
    events, _ = live.events_since(org.id, 0)
    return [event["type"] for event in events]


def test_backoff_doubles_from_one_second_up_to_thirty_and_never_undercuts_retry_after():
    assert [retry_delay_ms(n, None) for n in range(7)] == [
        1000,
        2000,
        4000,
        8000,
        16000,
        30000,
        30000,
    ]
    assert retry_delay_ms(0, 7.5) == 7500
    assert retry_delay_ms(3, 2) == 8000


@pytest.mark.usefixtures("fast_retries")
@responses.activate
def test_a_server_error_is_retried_then_the_reply_is_sent(worker, org, thread, user):
    responses.post(URL, status=503, json=graph_error(2, "Service temporarily unavailable"))
    responses.post(URL, json=whatsapp_sent("wamid.OK"))
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    sent = reload(message)
    assert (sent.status, sent.external_id, sent.error_code) == (
        MessageStatus.SENT,
        "wamid.OK",
        None,
    )
    assert len(responses.calls) == 2
    assert [(a.ok, a.action) for a in AuditLog.select().order_by(AuditLog.id)] == [
        (False, "send"),
        (True, "send"),
    ]
    assert event_types(org) == ["message:sent"]


@pytest.mark.usefixtures("fast_retries")
@responses.activate
def test_after_three_retries_the_reply_fails_with_the_last_errors_code(worker, org, thread, user):
    responses.post(URL, status=400, json=graph_error(130429, "Rate limit hit"))
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    failed = reload(message)
    assert len(responses.calls) == 4
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, ErrorCode.RATE_LIMITED)
    assert (
        failed.error_message == "WhatsApp error 130429: Rate limit hit (gave up after 4 attempts)"
    )
    assert event_types(org) == ["message:status"]


@responses.activate
def test_a_retry_waits_as_long_as_retry_after_asks(worker, thread, user):
    arrivals = []

    def answer(request):
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return 429, {"Retry-After": "2"}, ""
        return 200, {}, '{"messages": [{"id": "wamid.LATER"}]}'

    responses.add_callback(responses.POST, URL, callback=answer)
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    assert reload(message).status == MessageStatus.SENT
    assert arrivals[1] - arrivals[0] >= 2.0


@responses.activate
def test_an_expired_token_is_refreshed_once_and_the_send_tried_again(
    worker, org, connections, user
):
    connection = connections["tiktok"]
    connection.set_tokens("tiktok-access-token", "tiktok-refresh-token")
    connection.save()
    thread = conversation(org, connection)
    refresh_url = f"{TIKTOK}/tt_user/oauth2/refresh_token/"
    responses.post(SEND_URLS["tiktok"], json=tiktok_answer(code=40105, message="Token expired"))
    responses.post(SEND_URLS["tiktok"], json=tiktok_sent("7400000000000000009"))
    fresh = {
        "open_id": "7312345678901",
        "access_token": "tiktok-fresh-token",
        "refresh_token": "tiktok-refresh-token-2",
        "expires_in": 86400,
        "refresh_token_expires_in": 31536000,
        "scope": "message.list.send",
    }
    responses.post(refresh_url, json=tiktok_answer(fresh))
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    first, refresh, second = responses.calls
    assert first.request.headers["Access-Token"] == "tiktok-access-token"
    assert refresh.request.url == refresh_url
    assert second.request.headers["Access-Token"] == "tiktok-fresh-token"
    assert reload(message).status == MessageStatus.SENT


@pytest.mark.parametrize("refreshed", [None, "whatsapp-fresh-token"])
@responses.activate
def test_a_token_still_refused_after_one_refresh_fails_the_reply(
    worker, thread, user, monkeypatch, refreshed
):
    refreshes = []

    def refresh(connection_id, stale_token):
        refreshes.append((connection_id, stale_token))
        return refreshed

    monkeypatch.setattr("workers.tokens.refresh_access_token", refresh)
    responses.post(URL, status=401, json=graph_error(190, "Error validating access token"))
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    failed = reload(message)
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, ErrorCode.TOKEN_EXPIRED)
    assert refreshes == [(thread.connection_id, "whatsapp-access-token")]
    assert len(responses.calls) == (1 if refreshed is None else 2)
    if refreshed is None:
        assert "reconnect" in failed.error_message


@responses.activate
def test_a_connection_that_needs_reconnecting_fails_replies_at_once(worker, thread, user):
    connection = thread.connection
    connection.status = ConnectionStatus.NEEDS_REAUTH
    connection.status_reason = "Meta no longer accepts this WhatsApp token; reconnect the account."
    connection.save()
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    failed = reload(message)
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, ErrorCode.TOKEN_EXPIRED)
    assert "reconnected" in failed.error_message
    assert not responses.calls


@responses.activate
def test_a_send_the_platform_never_answered_is_not_repeated(worker, org, thread, user):
    responses.post(URL, body=requests.ReadTimeout("read timed out"))
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()
    send_message.send(message.id)
    worker.drain()

    waiting = reload(message)
    assert len(responses.calls) == 1
    assert (waiting.status, waiting.error_code) == (
        MessageStatus.PENDING,
        ErrorCode.SEND_UNCONFIRMED,
    )
    assert "may have been delivered" in waiting.error_message
    assert "Check the conversation on WhatsApp before retrying" in waiting.error_message
    assert event_types(org) == ["message:status"]
    (entry,) = AuditLog.select()
    assert not entry.ok and "may have been delivered" in entry.detail


def api_message(client, api_headers, message) -> dict:
    path = f"/api/v1/conversations/{message.conversation_id}/messages"
    listed = client.get(path, headers=api_headers).get_json()["messages"]
    return next(m for m in listed if m["id"] == message.id)


@responses.activate
def test_the_api_says_until_when_an_unconfirmed_send_waits_for_the_platform(
    worker, org, thread, user, client, api_headers, monkeypatch
):
    monkeypatch.setenv("SNORQ_SEND_UNCONFIRMED_WAIT", "90")
    get_settings.cache_clear()
    responses.post(URL, body=requests.ReadTimeout("read timed out"))
    message = reply(thread, user)
    assert api_message(client, api_headers, message)["unconfirmed_until"] is None

    before = utcnow()
    send_message.send(message.id)
    worker.drain()
    after = utcnow()

    shown = api_message(client, api_headers, message)
    until = datetime.datetime.fromisoformat(shown["unconfirmed_until"].removesuffix("Z"))
    wait = datetime.timedelta(seconds=90)
    assert before + wait <= until <= after + wait
    assert shown["unconfirmed_until"] == timestamp(reload(message).send_lease_until)
    (event,) = live.events_since(org.id, 0)[0]
    assert event["data"]["message"]["unconfirmed_until"] == shown["unconfirmed_until"]


@responses.activate
def test_a_queued_or_sent_reply_is_not_unconfirmed(worker, thread, user, client, api_headers):
    responses.post(URL, json=whatsapp_sent("wamid.OK"))
    message = reply(thread, user)
    queued = api_message(client, api_headers, message)

    send_message.send(message.id)
    worker.drain()

    sent = api_message(client, api_headers, message)
    assert (queued["status"], queued["unconfirmed_until"]) == (MessageStatus.PENDING, None)
    assert (sent["status"], sent["unconfirmed_until"]) == (MessageStatus.SENT, None)


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError(ConnectionRefusedError(111, "Connection refused")),
        requests.ConnectTimeout("connect timed out"),
    ],
)
@pytest.mark.usefixtures("fast_retries")
@responses.activate
def test_a_send_that_never_reached_the_platform_is_retried(worker, thread, user, failure):
    responses.post(URL, body=failure)
    responses.post(URL, json=whatsapp_sent("wamid.SECOND"))
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    assert reload(message).external_id == "wamid.SECOND"
    assert len(responses.calls) == 2


@responses.activate
def test_two_copies_of_a_job_send_the_reply_once(worker, thread, user):
    responses.post(URL, json=whatsapp_sent())
    message = reply(thread, user)

    for _ in range(3):
        send_message.send(message.id)
    worker.drain()

    assert len(responses.calls) == 1
    assert reload(message).status == MessageStatus.SENT


def test_a_reply_being_sent_is_marked_unconfirmed_until_the_platform_answers(thread, user):
    seen = []

    def send(account, recipient, outbound_reply):
        seen.append(reload(message))
        return "wamid.MARKED"

    message = reply(thread, user)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(outbound.get_platform("whatsapp"), "send", send)
        send_message.fn(message.id)

    (during,) = seen
    assert (during.status, during.error_code) == (
        MessageStatus.PENDING,
        ErrorCode.SEND_UNCONFIRMED,
    )
    after = reload(message)
    assert (after.status, after.error_code) == (MessageStatus.SENT, None)


def test_only_one_attempt_takes_a_reply_and_none_once_it_may_have_gone_out(thread, user):
    message = reply(thread, user)
    settle_by = utcnow() + datetime.timedelta(minutes=10)

    assert messages.sendable(message.id) is not None
    assert messages.claim_send(message.id, "Sending to WhatsApp…", settle_by=settle_by)
    assert not messages.claim_send(message.id, "Sending to WhatsApp…", settle_by=settle_by)
    assert messages.sendable(message.id) is None
    held = reload(message)
    assert (held.status, held.error_code, held.send_attempts) == (
        MessageStatus.PENDING,
        ErrorCode.SEND_UNCONFIRMED,
        1,
    )


def test_a_reply_given_back_for_a_token_is_free_again(thread, user):
    message = reply(thread, user)
    messages.claim_send(message.id, "Sending to WhatsApp…", settle_by=utcnow())
    messages.defer_send(message.id, utcnow())

    assert messages.sendable(message.id) is not None
    assert messages.claim_send(message.id, "Sending to WhatsApp…", settle_by=utcnow())
    assert reload(message).send_attempts == 2


@responses.activate
def test_a_reply_reaches_postgresql_in_four_round_trips(thread, user, wire):
    """The read of the reply with its thread, then the claim with its in-flight mark,
    committed before the platform call (the crash-safety of a send needs it); then the
    audit entry, the external id's lock and SENT (with the look for a twin and early
    statuses) travel together, and the COMMIT (bench/README.md)."""
    responses.post(URL, json=whatsapp_sent("wamid.WARM"))
    send_message.fn(reply(thread, user).id)  # each statement is prepared on first use
    responses.replace(responses.POST, URL, json=whatsapp_sent("wamid.COUNTED"))
    message = reply(thread, user)
    wire.clear()

    send_message.fn(message.id)
    sent = list(wire)

    assert [statement.split()[0] for statement in sent] == [
        "EXECUTE",
        "EXECUTE",
        "BEGIN;",
        "COMMIT",
    ]
    assert "pg_advisory_xact_lock" in sent[2]
    assert reload(message).status == MessageStatus.SENT
