"""TikTok Business Messaging sends, faked at the HTTP level: ``Access-Token``, the envelope."""

import json
import time

import pytest
import responses

from app.models import MessageStatus
from app.platforms import get_platform
from app.platforms.base import Account, MediaSource, Outbound, Recipient
from app.platforms.errors import (
    AuthError,
    ErrorCode,
    PermanentError,
    PlatformError,
    TemporaryError,
)
from tests.platform_fakes import (
    CUSTOMERS,
    SEND_URLS,
    TIKTOK,
    TIKTOK_THREAD,
    conversation,
    reload,
    reply,
    sent_json,
    tiktok_answer,
    tiktok_sent,
)
from workers.outbound import send_message

URL = SEND_URLS["tiktok"]
ACCOUNT = Account("7312345678901", "tiktok-access-token")
RECIPIENT = Recipient(CUSTOMERS["tiktok"]["external_id"], thread_id=TIKTOK_THREAD)


@responses.activate
def test_a_reply_goes_to_the_conversation_with_the_access_token_header(
    worker, org, connections, user
):
    thread = conversation(org, connections["tiktok"], wrote_hours_ago=40)
    responses.post(URL, json=tiktok_sent("7400000000000000001"))
    message = reply(thread, user, "Merci ! Ça arrive demain 🚚")

    send_message.send(message.id)
    worker.drain()

    (call,) = responses.calls
    assert call.request.url == URL
    assert call.request.headers["Access-Token"] == "tiktok-access-token"
    assert "Authorization" not in call.request.headers
    assert sent_json(call) == {
        "business_id": "7312345678901",
        "recipient_type": "CONVERSATION",
        "recipient": TIKTOK_THREAD,
        "message_type": "TEXT",
        "text": {"body": "Merci ! Ça arrive demain 🚚"},
    }
    sent = reload(message)
    assert (sent.status, sent.external_id) == (MessageStatus.SENT, "7400000000000000001")


@responses.activate
def test_after_48_hours_a_reply_fails_at_once(worker, org, connections, user):
    thread = conversation(org, connections["tiktok"], wrote_hours_ago=49)
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    failed = reload(message)
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, ErrorCode.OUTSIDE_WINDOW)
    assert "48 hours" in failed.error_message
    assert not responses.calls


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (
            {"json": tiktok_answer(code=40100, message="Too many requests")},
            TemporaryError,
            ErrorCode.RATE_LIMITED,
        ),
        (
            {"status": 429, "json": tiktok_answer(code=40100, message="Too many requests")},
            TemporaryError,
            ErrorCode.RATE_LIMITED,
        ),
        ({"status": 429, "body": "Too Many Requests"}, TemporaryError, ErrorCode.RATE_LIMITED),
        (
            {"json": tiktok_answer(code=50002, message="Service busy")},
            TemporaryError,
            ErrorCode.PLATFORM_UNAVAILABLE,
        ),
        (
            {"status": 503, "body": "upstream connect error"},
            TemporaryError,
            ErrorCode.PLATFORM_UNAVAILABLE,
        ),
        (
            {"json": tiktok_answer(code=40105, message="Access token is incorrect or revoked")},
            AuthError,
            ErrorCode.TOKEN_EXPIRED,
        ),
        (
            {"json": tiktok_answer(code=40104, message="Access token has expired")},
            AuthError,
            ErrorCode.TOKEN_EXPIRED,
        ),
        ({"status": 401, "body": "Unauthorized"}, AuthError, ErrorCode.TOKEN_EXPIRED),
        (
            {"json": tiktok_answer(code=40001, message="No permission")},
            AuthError,
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            {"json": tiktok_answer(code=40064, message="You are sending messages too fast")},
            PermanentError,
            ErrorCode.RATE_LIMITED,
        ),
        (
            {"json": tiktok_answer(code=40002, message="Parameter error")},
            PermanentError,
            ErrorCode.REJECTED,
        ),
    ],
)
@responses.activate
def test_a_nonzero_code_is_an_error_even_on_http_200(answer, kind, code):
    responses.post(URL, **answer)

    with pytest.raises(PlatformError) as raised:
        get_platform("tiktok").send(ACCOUNT, RECIPIENT, Outbound(7, text="Hello"))

    assert type(raised.value) is kind
    assert raised.value.code == code


@responses.activate
def test_an_http_429_is_throttled_and_keeps_tiktoks_retry_after():
    responses.post(URL, status=429, headers={"Retry-After": "12"}, body="")

    with pytest.raises(TemporaryError) as raised:
        get_platform("tiktok").send(ACCOUNT, RECIPIENT, Outbound(7, text="Hello"))

    assert (raised.value.code, raised.value.retry_after) == (ErrorCode.RATE_LIMITED, 12.0)
    assert not raised.value.maybe_delivered


@responses.activate
def test_a_throttled_reply_is_retried_no_sooner_than_retry_after(worker, org, connections, user):
    arrivals = []

    def answer(request):
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return 429, {"Retry-After": "1"}, ""
        return 200, {}, json.dumps(tiktok_sent("7400000000000000002"))

    responses.add_callback(responses.POST, URL, callback=answer)
    message = reply(conversation(org, connections["tiktok"]), user)

    send_message.send(message.id)
    worker.drain()

    sent = reload(message)
    assert (sent.status, sent.external_id) == (MessageStatus.SENT, "7400000000000000002")
    assert arrivals[1] - arrivals[0] >= 1.0


#: A Business API call of each kind, and the URL it calls.
CALLS = {
    "send": (URL, lambda tiktok: tiktok.send(ACCOUNT, RECIPIENT, Outbound(7, text="Hello"))),
    "media link": (
        f"{TIKTOK}/business/message/media/download/",
        lambda tiktok: tiktok.media_url(
            ACCOUNT, MediaSource("image", media_id="m1", message_id="7401", thread_id="t")
        ),
    ),
    "token refresh": (
        f"{TIKTOK}/tt_user/oauth2/refresh_token/",
        lambda tiktok: tiktok.refresh(ACCOUNT, "tt-refresh-1"),
    ),
}


@pytest.mark.parametrize(
    ("call", "maybe_delivered"), [("send", True), ("media link", False), ("token refresh", False)]
)
@pytest.mark.parametrize("body", ["<html>gateway</html>", '{"message": "OK"}'])
@responses.activate
def test_a_2xx_answer_without_a_code_may_mean_a_message_went_only_on_a_send(
    call, maybe_delivered, body
):
    url, make_call = CALLS[call]
    responses.post(url, body=body)

    with pytest.raises(TemporaryError) as raised:
        make_call(get_platform("tiktok"))

    assert raised.value.code == ErrorCode.PLATFORM_UNAVAILABLE
    assert raised.value.maybe_delivered is maybe_delivered


@responses.activate
def test_a_refusal_fails_the_reply_with_tiktoks_words(worker, org, connections, user):
    thread = conversation(org, connections["tiktok"])
    responses.post(URL, json=tiktok_answer(code=40002, message="Parameter error: recipient"))
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    failed = reload(message)
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, ErrorCode.REJECTED)
    assert failed.error_message == "TikTok error 40002: Parameter error: recipient"


def test_a_conversation_tiktok_never_named_cannot_be_answered():
    with pytest.raises(PermanentError) as raised:
        get_platform("tiktok").send(ACCOUNT, Recipient("7312000000000000001"), Outbound(7, "Hi"))

    assert raised.value.code == ErrorCode.INVALID_RECIPIENT
