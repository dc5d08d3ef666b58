"""The send API: store PENDING and queue (202); validation as clear 400s; retry, read, typing."""

import json

import pytest
import responses
from redis import RedisError

from app import live
from app.db import utcnow
from app.models import ContentType, Conversation, Direction, Message, MessageStatus
from tests.fixtures import make_connection
from tests.platform_fakes import SEND_URLS, conversation, graph_error, sent_json, tiktok_sent
from workers.broker import OUTBOUND, broker
from workers.outbound import send_message


def queued(actor_name: str) -> list[list]:
    """The arguments of each job for ``actor_name`` waiting in the outbound queue."""
    raw = broker.client.hgetall(f"{broker.namespace}:{OUTBOUND}.msgs")
    jobs = [json.loads(job) for job in raw.values()]
    return [job["args"] for job in jobs if job["actor_name"] == actor_name]


@pytest.fixture
def threads(org, connections):
    """One recent conversation per platform."""
    return {name: conversation(org, connection) for name, connection in connections.items()}


def post_reply(client, headers, thread, **body):
    return client.post(f"/api/v1/conversations/{thread.id}/messages", json=body, headers=headers)


@responses.activate
def test_a_reply_is_stored_pending_with_its_sender_and_queued_without_calling_the_platform(
    client, api_headers, threads, user, org
):
    response = post_reply(client, api_headers, threads["whatsapp"], content="On its way 🚚")

    assert response.status_code == 202
    message = response.get_json()["message"]
    assert message["status"] == MessageStatus.PENDING
    assert (message["content"], message["direction"]) == ("On its way 🚚", Direction.OUTBOUND)
    assert message["sent_by"] == user.id
    assert queued("send_message") == [[message["id"]]]
    assert not responses.calls
    events, _ = live.events_since(org.id, 0)
    assert [event["type"] for event in events] == ["new:message"]


def test_the_same_idempotency_key_returns_the_same_message_and_queues_one_send(
    client, api_headers, threads
):
    thread = threads["facebook"]
    first = post_reply(client, api_headers, thread, content="Hi", idempotency_key="k-77")
    again = post_reply(client, api_headers, thread, content="Hi", idempotency_key="k-77")

    assert first.status_code == again.status_code == 202
    assert first.get_json()["message"]["id"] == again.get_json()["message"]["id"]
    assert Message.select().count() == 1
    assert len(queued("send_message")) == 1


@responses.activate
def test_a_reply_through_the_api_reaches_the_platform_once(client, api_headers, threads, worker):
    responses.post(SEND_URLS["tiktok"], json=tiktok_sent("7400001"))
    thread = threads["tiktok"]
    for _ in range(2):
        post_reply(client, api_headers, thread, content="Thanks!", idempotency_key="tap-1")
    worker.drain()

    (message,) = Message.select()
    assert (message.status, message.external_id) == (MessageStatus.SENT, "7400001")
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("platform", "limit", "name"),
    [("whatsapp", 4096, "WhatsApp"), ("facebook", 2000, "Messenger"), ("tiktok", 6000, "TikTok")],
)
def test_text_over_the_platforms_limit_is_refused_up_front(
    client, api_headers, threads, platform, limit, name
):
    response = post_reply(client, api_headers, threads[platform], content="é" * (limit + 1))

    assert response.status_code == 400
    assert response.get_json()["error"] == (
        f"{name} takes at most {limit} characters in a message; this one has {limit + 1}."
    )
    assert Message.select().count() == 0
    assert (
        post_reply(client, api_headers, threads[platform], content="é" * limit).status_code == 202
    )


@pytest.mark.parametrize(
    ("platform", "body", "error"),
    [
        ("whatsapp", {"content": "   "}, "A reply needs some text."),
        ("whatsapp", {"content": 42}, "content must be a string."),
        ("whatsapp", {"content": "Hi", "idempotency_key": ""}, "idempotency_key must be text"),
        (
            "whatsapp",
            {"content": "Hi", "quick_replies": [{"title": "Yes"}]},
            "WhatsApp replies cannot carry quick_replies.",
        ),
        (
            "tiktok",
            {"content": "Hi", "template": {"name": "x", "language": "en"}},
            "TikTok replies cannot carry template.",
        ),
        (
            "facebook",
            {"content": "Hi", "quick_replies": [{"title": "Yes"}] * 14},
            "Messenger takes at most 13 quick replies; this reply has 14.",
        ),
        (
            "facebook",
            {"content": "Hi", "quick_replies": [{"title": "Twenty-one characters"}]},
            "Quick reply 1: Messenger takes titles of at most 20 characters; "
            "'Twenty-one characters' has 21.",
        ),
        (
            "facebook",
            {"content": "Hi", "quick_replies": [{"payload": "X"}]},
            "Quick reply 1 needs a title.",
        ),
        (
            "facebook",
            {"content": "Hi", "quick_replies": "Yes"},
            "quick_replies must be a list of {title, payload} objects.",
        ),
        (
            "whatsapp",
            {"template": {"name": "order_update"}},
            'template.language must be a language code such as "en_US".',
        ),
        (
            "whatsapp",
            {"template": {"language": "en_US"}},
            "template.name must be the name of an approved template.",
        ),
        (
            "whatsapp",
            {"template": {"name": "a", "language": "en", "components": {}}},
            "template.components must be a list of objects.",
        ),
    ],
)
def test_a_malformed_reply_is_a_400_that_says_what_to_fix(
    client, api_headers, threads, platform, body, error
):
    response = post_reply(client, api_headers, threads[platform], **body)

    assert response.status_code == 400
    assert response.get_json()["error"].startswith(error)
    assert Message.select().count() == 0


def test_a_body_that_is_not_a_json_object_is_a_400(client, api_headers, threads):
    url = f"/api/v1/conversations/{threads['whatsapp'].id}/messages"

    response = client.post(url, data="content=Hi", headers=api_headers)

    assert response.status_code == 400
    assert "JSON object" in response.get_json()["error"]


def test_quick_replies_and_templates_are_kept_for_the_worker(client, api_headers, threads):
    quick = post_reply(
        client,
        api_headers,
        threads["facebook"],
        content="Pick one",
        quick_replies=[{"title": "Track", "payload": "TRACK"}, {"title": "Help"}],
    )
    template = {"name": "order_update", "language": "en_US"}
    tpl = post_reply(client, api_headers, threads["whatsapp"], template=template)

    quick_message = Message.get_by_id(quick.get_json()["message"]["id"])
    assert quick_message.payload == {
        "quick_replies": [
            {"title": "Track", "payload": "TRACK"},
            {"title": "Help", "payload": "Help"},
        ]
    }
    tpl_message = Message.get_by_id(tpl.get_json()["message"]["id"])
    assert tpl_message.content_type == ContentType.TEMPLATE
    assert tpl_message.content == "Template order_update (en_US)"
    assert tpl_message.payload == {"template": {**template, "components": []}}


def test_another_organizations_conversation_is_not_found(client, api_headers, other_org):
    theirs = conversation(other_org, make_connection(other_org, "tiktok", "7399999999999"))

    assert post_reply(client, api_headers, theirs, content="Hi").status_code == 404
    assert Message.select().count() == 0


def test_a_reply_stored_while_the_queue_is_down_is_still_accepted(
    client, api_headers, threads, monkeypatch
):
    def broker_down(*args):
        raise RedisError("Connection refused")

    monkeypatch.setattr(send_message, "send", broker_down)

    response = post_reply(client, api_headers, threads["whatsapp"], content="Hi")

    assert response.status_code == 202
    assert Message.get_by_id(response.get_json()["message"]["id"]).status == MessageStatus.PENDING


@responses.activate
def test_a_failed_reply_can_be_sent_again(client, api_headers, threads, worker):
    url = SEND_URLS["whatsapp"]
    responses.post(url, status=400, json=graph_error(131026, "Message Undeliverable."))
    responses.post(url, json={"messages": [{"id": "wamid.RETRIED"}]})
    message_id = post_reply(client, api_headers, threads["whatsapp"], content="Hi").get_json()[
        "message"
    ]["id"]
    worker.drain()
    assert Message.get_by_id(message_id).status == MessageStatus.FAILED

    response = client.post(f"/api/v1/messages/{message_id}/retry", headers=api_headers)
    assert response.status_code == 202
    assert response.get_json()["message"]["status"] == MessageStatus.PENDING
    worker.drain()

    assert Message.get_by_id(message_id).external_id == "wamid.RETRIED"
    again = client.post(f"/api/v1/messages/{message_id}/retry", headers=api_headers)
    assert again.status_code == 409


def test_retrying_another_organizations_message_is_not_found(client, api_headers, other_org, user):
    theirs = conversation(other_org, make_connection(other_org, "tiktok", "7399999999999"))
    message = Message.create(
        organization=other_org,
        connection=theirs.connection_id,
        conversation=theirs,
        direction=Direction.OUTBOUND,
        content="x",
        status=MessageStatus.FAILED,
    )

    assert (
        client.post(f"/api/v1/messages/{message.id}/retry", headers=api_headers).status_code == 404
    )


def inbound(thread, external_id: str) -> Message:
    """A customer's message in ``thread``, not read yet."""
    thread.unread_count += 1
    thread.save()
    return Message.create(
        organization=thread.organization_id,
        connection=thread.connection_id,
        conversation=thread,
        direction=Direction.INBOUND,
        content="Where is it?",
        status=MessageStatus.RECEIVED,
        external_id=external_id,
        created_at=utcnow(),
    )


@responses.activate
def test_opening_a_whatsapp_conversation_sends_a_read_receipt_for_its_latest_message(
    client, api_headers, threads, worker
):
    responses.post(SEND_URLS["whatsapp"], json={"success": True})
    thread = threads["whatsapp"]
    inbound(thread, "wamid.IN1")
    inbound(thread, "wamid.IN2")

    response = client.post(f"/api/v1/conversations/{thread.id}/read", headers=api_headers)
    assert response.get_json() == {"conversation_id": thread.id, "unread_count": 0}
    assert not responses.calls
    worker.drain()
    client.post(f"/api/v1/conversations/{thread.id}/read", headers=api_headers)
    worker.drain()

    (call,) = responses.calls
    assert sent_json(call) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN2",
    }


def test_tiktok_has_no_read_receipt_to_queue(client, api_headers, threads):
    thread = threads["tiktok"]
    inbound(thread, "7400000000000000077")

    client.post(f"/api/v1/conversations/{thread.id}/read", headers=api_headers)

    assert queued("send_read_receipt") == []
    assert Conversation.get_by_id(thread.id).unread_count == 0


@responses.activate
def test_typing_shows_on_messenger_and_is_a_no_op_on_tiktok(client, api_headers, threads, worker):
    responses.post(SEND_URLS["facebook"], json={"recipient_id": "24012345678901234"})
    inbound(threads["facebook"], "m_in_1")

    messenger = client.post(
        f"/api/v1/conversations/{threads['facebook'].id}/typing", headers=api_headers
    )
    tiktok = client.post(
        f"/api/v1/conversations/{threads['tiktok'].id}/typing", headers=api_headers
    )
    worker.drain()

    assert (messenger.status_code, tiktok.status_code) == (202, 204)
    (call,) = responses.calls
    assert sent_json(call) == {
        "recipient": {"id": "24012345678901234"},
        "sender_action": "typing_on",
    }


def test_a_template_language_may_come_as_the_graph_api_writes_it(client, api_headers, threads):
    template = {"name": "order_update", "language": {"code": "pt_BR"}}

    response = post_reply(client, api_headers, threads["whatsapp"], template=template)

    stored = Message.get_by_id(response.get_json()["message"]["id"])
    assert stored.payload == {
        "template": {"name": "order_update", "language": "pt_BR", "components": []}
    }
