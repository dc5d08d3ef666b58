"""Messenger Send API sends, faked at the HTTP level: the request, the answer, each error."""

import pytest
import responses

from app.config import get_settings
from app.models import MessageStatus
from app.platforms import get_platform
from app.platforms.base import Account, Outbound, Recipient
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
    conversation,
    graph_error,
    messenger_sent,
    reload,
    reply,
    sent_json,
)
from workers.outbound import send_message

URL = SEND_URLS["facebook"]
PSID = CUSTOMERS["facebook"]["external_id"]
ACCOUNT = Account("1234567890", "facebook-access-token")
RECIPIENT = Recipient(PSID)


@pytest.fixture
def human_agent(monkeypatch):
    """The app has Meta's approval for the HUMAN_AGENT tag."""
    monkeypatch.setenv("FACEBOOK_HUMAN_AGENT", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@responses.activate
def test_a_reply_goes_to_the_psid_as_a_response_with_our_reference(worker, org, connections, user):
    thread = conversation(org, connections["facebook"], wrote_hours_ago=2)
    responses.post(URL, json=messenger_sent("m_1"))
    quick = [{"title": "Track it", "payload": "TRACK"}, {"title": "Talk to us"}]
    message = reply(thread, user, "Où est ma commande ?", quick_replies=quick)

    send_message.send(message.id)
    worker.drain()

    (call,) = responses.calls
    assert call.request.url == URL
    assert call.request.headers["Authorization"] == "Bearer facebook-access-token"
    assert "access_token" not in call.request.url
    assert sent_json(call) == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {
            "text": "Où est ma commande ?",
            "metadata": f"snorq:{message.id}",
            "quick_replies": [
                {"content_type": "text", "title": "Track it", "payload": "TRACK"},
                {"content_type": "text", "title": "Talk to us", "payload": "Talk to us"},
            ],
        },
    }
    sent = reload(message)
    assert (sent.status, sent.external_id) == (MessageStatus.SENT, "m_1")


@responses.activate
def test_between_one_and_seven_days_a_reply_carries_the_human_agent_tag_when_enabled(
    worker, org, connections, user, human_agent
):
    thread = conversation(org, connections["facebook"], wrote_hours_ago=72)
    responses.post(URL, json=messenger_sent())

    send_message.send(reply(thread, user).id)
    worker.drain()

    body = sent_json(responses.calls[0])
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


@pytest.mark.parametrize(
    ("approved", "hours", "says"),
    [(False, 30, "HUMAN_AGENT"), (True, 8 * 24, "7 days")],
)
@responses.activate
def test_past_its_window_a_reply_fails_at_once_without_calling_messenger(
    worker, org, connections, user, request, approved, hours, says
):
    if approved:
        request.getfixturevalue("human_agent")
    thread = conversation(org, connections["facebook"], wrote_hours_ago=hours)
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    failed = reload(message)
    assert (failed.status, failed.error_code) == (MessageStatus.FAILED, ErrorCode.OUTSIDE_WINDOW)
    assert says in failed.error_message
    assert not responses.calls


@pytest.mark.parametrize(
    ("method", "action"), [("mark_read", "mark_seen"), ("typing", "typing_on")]
)
@responses.activate
def test_sender_actions_go_alone_with_the_recipient(method, action):
    responses.post(URL, json={"recipient_id": PSID})

    getattr(get_platform("facebook"), method)(ACCOUNT, RECIPIENT, "m_in")

    (call,) = responses.calls
    assert sent_json(call) == {"recipient": {"id": PSID}, "sender_action": action}
    assert call.request.headers["Authorization"] == "Bearer facebook-access-token"


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (
            {"status": 400, "json": graph_error(10, "Outside of allowed window", 2018278)},
            PermanentError,
            ErrorCode.OUTSIDE_WINDOW,
        ),
        (
            {"status": 400, "json": graph_error(100, "No matching user found", 2018001)},
            PermanentError,
            ErrorCode.INVALID_RECIPIENT,
        ),
        (
            {"status": 400, "json": graph_error(551, "This person isn't available right now.")},
            PermanentError,
            ErrorCode.RECIPIENT_BLOCKED,
        ),
        (
            {"status": 400, "json": graph_error(100, "Invalid parameter")},
            PermanentError,
            ErrorCode.REJECTED,
        ),
        (
            {"status": 400, "json": graph_error(10, "Application does not have permission")},
            AuthError,
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            {"status": 403, "json": graph_error(230, "Requires pages_messaging permission")},
            AuthError,
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            {"status": 401, "json": graph_error(190, "Error validating access token")},
            AuthError,
            ErrorCode.TOKEN_EXPIRED,
        ),
        (
            {"status": 400, "json": graph_error(613, "Calls to this api have exceeded the rate")},
            TemporaryError,
            ErrorCode.RATE_LIMITED,
        ),
        (
            {"status": 400, "json": graph_error(4, "Application request limit reached")},
            TemporaryError,
            ErrorCode.RATE_LIMITED,
        ),
        (
            {"status": 500, "json": graph_error(1200, "Temporary send message failure")},
            TemporaryError,
            ErrorCode.PLATFORM_UNAVAILABLE,
        ),
        (
            {"status": 500, "json": graph_error(2, "An unexpected error has occurred")},
            TemporaryError,
            ErrorCode.PLATFORM_UNAVAILABLE,
        ),
        ({"status": 502, "body": "Bad Gateway"}, TemporaryError, ErrorCode.PLATFORM_UNAVAILABLE),
    ],
)
@responses.activate
def test_each_error_is_classified_by_its_code_and_subcode(answer, kind, code):
    responses.post(URL, **answer)

    with pytest.raises(PlatformError) as raised:
        get_platform("facebook").send(ACCOUNT, RECIPIENT, Outbound(7, text="Hello"))

    assert type(raised.value) is kind
    assert raised.value.code == code


@responses.activate
def test_a_blocked_recipient_fails_the_reply_with_messengers_words(worker, org, connections, user):
    thread = conversation(org, connections["facebook"])
    responses.post(URL, status=400, json=graph_error(551, "This person isn't available right now."))
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    failed = reload(message)
    assert failed.error_code == ErrorCode.RECIPIENT_BLOCKED
    assert failed.error_message == "Messenger error 551: This person isn't available right now."
