"""WhatsApp Cloud API sends, faked at the HTTP level: the request, the answer, each error."""

import pytest
import responses

from app.models import AuditLog, MessageStatus
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
    SEND_URLS,
    conversation,
    graph_error,
    reload,
    reply,
    sent_json,
    whatsapp_sent,
)
from workers.outbound import send_message

URL = SEND_URLS["whatsapp"]
ACCOUNT = Account("106540352242922", "whatsapp-access-token")
RECIPIENT = Recipient("US.13491208655302741918", "16505551234")


@pytest.fixture
def thread(org, connections):
    return conversation(org, connections["whatsapp"])


@responses.activate
def test_a_reply_is_posted_to_the_phone_number_with_the_bearer_token(worker, thread, user):
    responses.post(URL, json=whatsapp_sent("wamid.ABC"))
    message = reply(thread, user, "Hé 👋, your order ships today")

    send_message.send(message.id)
    worker.drain()

    (call,) = responses.calls
    assert call.request.url == URL
    assert call.request.headers["Authorization"] == "Bearer whatsapp-access-token"
    assert call.request.headers["Content-Type"] == "application/json"
    assert sent_json(call) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "biz_opaque_callback_data": f"snorq:{message.id}",
        "type": "text",
        "text": {"body": "Hé 👋, your order ships today"},
    }
    sent = reload(message)
    assert (sent.status, sent.external_id, sent.error_code) == (
        MessageStatus.SENT,
        "wamid.ABC",
        None,
    )
    assert sent.sent_at is not None


@responses.activate
def test_a_customer_known_only_by_business_scoped_id_is_addressed_as_recipient(
    worker, org, connections, user
):
    thread = conversation(org, connections["whatsapp"], phone=None)
    responses.post(URL, json=whatsapp_sent())
    send_message.send(reply(thread, user).id)
    worker.drain()

    body = sent_json(responses.calls[0])
    assert body["recipient"] == "US.13491208655302741918"
    assert "to" not in body


@responses.activate
def test_a_template_goes_out_as_name_language_and_components(worker, thread, user):
    responses.post(URL, json=whatsapp_sent())
    components = [{"type": "body", "parameters": [{"type": "text", "text": "A-1042"}]}]
    template = {"name": "order_update", "language": "en_US", "components": components}
    message = reply(thread, user, "Template order_update (en_US)", template=template)

    send_message.send(message.id)
    worker.drain()

    body = sent_json(responses.calls[0])
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": components,
    }
    assert "text" not in body
    assert reload(message).status == MessageStatus.SENT


@responses.activate
def test_outside_24_hours_a_text_fails_at_once_and_a_template_still_goes(
    worker, org, connections, user
):
    thread = conversation(org, connections["whatsapp"], wrote_hours_ago=30)
    responses.post(URL, json=whatsapp_sent())
    text = reply(thread, user, "Are you still there?")
    template = reply(
        thread, user, "Template", template={"name": "hello", "language": "en", "components": []}
    )

    send_message.send(text.id)
    send_message.send(template.id)
    worker.drain()

    refused = reload(text)
    assert refused.status == MessageStatus.FAILED
    assert refused.error_code == ErrorCode.OUTSIDE_WINDOW
    assert "template" in refused.error_message
    assert reload(template).status == MessageStatus.SENT
    assert len(responses.calls) == 1
    assert sent_json(responses.calls[0])["type"] == "template"


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (
            {"status": 400, "json": graph_error(131026, "Message Undeliverable.")},
            PermanentError,
            ErrorCode.INVALID_RECIPIENT,
        ),
        (
            {"status": 400, "json": graph_error(131047, "Re-engagement message")},
            PermanentError,
            ErrorCode.OUTSIDE_WINDOW,
        ),
        (
            {"status": 400, "json": graph_error(131053, "Media upload error")},
            PermanentError,
            ErrorCode.MEDIA_UPLOAD_FAILED,
        ),
        (
            {"status": 400, "json": graph_error(100, "Invalid parameter")},
            PermanentError,
            ErrorCode.REJECTED,
        ),
        (
            {"status": 403, "json": graph_error(368, "Temporarily blocked for policy violations")},
            PermanentError,
            ErrorCode.REJECTED,
        ),
        (
            {"status": 403, "json": graph_error(10, "Permission denied")},
            AuthError,
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            {"status": 401, "json": graph_error(190, "Error validating access token")},
            AuthError,
            ErrorCode.TOKEN_EXPIRED,
        ),
        (
            {"status": 400, "json": graph_error(130429, "Rate limit hit")},
            TemporaryError,
            ErrorCode.RATE_LIMITED,
        ),
        (
            {"status": 400, "json": graph_error(131056, "Pair rate limit hit")},
            TemporaryError,
            ErrorCode.RATE_LIMITED,
        ),
        (
            {"status": 400, "json": graph_error(80007, "Rate limit issues")},
            TemporaryError,
            ErrorCode.RATE_LIMITED,
        ),
        ({"status": 429, "body": "Too Many Requests"}, TemporaryError, ErrorCode.RATE_LIMITED),
        (
            {"status": 500, "json": graph_error(131000, "Something went wrong")},
            TemporaryError,
            ErrorCode.PLATFORM_UNAVAILABLE,
        ),
        (
            {"status": 503, "json": graph_error(2, "Service temporarily unavailable")},
            TemporaryError,
            ErrorCode.PLATFORM_UNAVAILABLE,
        ),
        (
            {"status": 502, "body": "<html>Bad Gateway</html>"},
            TemporaryError,
            ErrorCode.PLATFORM_UNAVAILABLE,
        ),
    ],
)
@responses.activate
def test_each_error_is_classified_by_its_code(answer, kind, code):
    responses.post(URL, **answer)

    with pytest.raises(PlatformError) as raised:
        get_platform("whatsapp").send(ACCOUNT, RECIPIENT, Outbound(7, text="Hello"))

    assert type(raised.value) is kind
    assert raised.value.code == code
    assert not getattr(raised.value, "maybe_delivered", False)


@responses.activate
def test_retry_after_from_whatsapp_is_kept_on_the_error():
    responses.post(URL, status=429, headers={"Retry-After": "7"}, body="")

    with pytest.raises(TemporaryError) as raised:
        get_platform("whatsapp").send(ACCOUNT, RECIPIENT, Outbound(7, text="Hello"))

    assert raised.value.retry_after == 7.0


@responses.activate
def test_an_answer_without_a_message_id_may_have_been_sent():
    responses.post(URL, json={"messaging_product": "whatsapp", "messages": []})

    with pytest.raises(TemporaryError) as raised:
        get_platform("whatsapp").send(ACCOUNT, RECIPIENT, Outbound(7, text="Hello"))

    assert raised.value.maybe_delivered


@responses.activate
def test_a_refusal_fails_the_reply_at_once_with_whatsapps_words(worker, thread, user):
    responses.post(URL, status=400, json=graph_error(131026, "Message Undeliverable."))
    message = reply(thread, user)

    send_message.send(message.id)
    worker.drain()

    failed = reload(message)
    assert failed.status == MessageStatus.FAILED
    assert failed.error_code == ErrorCode.INVALID_RECIPIENT
    assert failed.error_message == "WhatsApp error 131026: Message Undeliverable."
    assert len(responses.calls) == 1


@responses.activate
def test_mark_read_and_typing_name_the_customers_message():
    responses.post(URL, json={"success": True})
    whatsapp = get_platform("whatsapp")

    whatsapp.mark_read(ACCOUNT, RECIPIENT, "wamid.IN1")
    whatsapp.typing(ACCOUNT, RECIPIENT, "wamid.IN1")

    read, typing = (sent_json(call) for call in responses.calls)
    assert read == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1"}
    assert typing == {**read, "typing_indicator": {"type": "text"}}
    assert all(
        c.request.headers["Authorization"] == "Bearer whatsapp-access-token"
        for c in responses.calls
    )


@responses.activate
def test_the_audit_log_names_the_send_and_its_outcome_but_never_the_token_or_text(
    worker, thread, user
):
    responses.post(URL, status=400, json=graph_error(131026, "Message Undeliverable."))
    ok_thread_reply = reply(thread, user, "secret order details 4242")

    send_message.send(ok_thread_reply.id)
    worker.drain()

    (entry,) = AuditLog.select()
    assert (entry.action, entry.platform, entry.ok, entry.user_id) == (
        "send",
        "whatsapp",
        False,
        user.id,
    )
    assert f"message {ok_thread_reply.id}" in entry.detail
    assert "INVALID_RECIPIENT" in entry.detail and "131026" in entry.detail
    assert "4242" not in entry.detail and "access-token" not in entry.detail
