"""Webhooks through the endpoint and a real worker: stored once, in the right place, live."""

import datetime
import json
import threading
import time

import pytest
from prometheus_client import REGISTRY

from app import live, messages
from app.db import utcnow
from app.models import (
    Attachment,
    ConnectionStatus,
    Contact,
    ContentType,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    PlatformConnection,
    WebhookEvent,
    WebhookStatus,
)
from app.platforms import PLATFORMS
from app.platforms.errors import ErrorCode
from tests.payloads import payload
from tests.support import meta_body, meta_headers, signed, tiktok_headers
from workers.broker import broker

FIRST_MESSAGES = {
    "whatsapp": ("text", "Hé 👋 puis-je changer ma commande ? https://example.com/o/42"),
    "facebook": ("message", "Bonjour 👋 où en est ma commande ? https://shop.example/o/42"),
    "tiktok": ("im_receive_msg", "Olá! Ainda tem o tamanho M? ありがとう 🎉"),
}
CONTACT_IDS = {
    "whatsapp": "US.13491208655302741918",
    "facebook": "6789012345678901",
    "tiktok": "-000Xt0tEaTLpMtcvFrk0Gmn1SRbNUd3aA3ZP",
}
OUTBOUND_WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJPVVQx"


@pytest.fixture(scope="module")
def worker():
    """One worker for the whole module: starting and stopping one costs seconds.

    Like ``tests.fixtures.worker``, with two threads, so deliveries can collide. It
    leaves media fetches queued (here an attachment stays as ingest stored it) and
    profile lookups too (tests/test_profiles.py's; here the platforms' profile APIs do
    not answer, and waiting out their retries would only slow every test).
    """
    import dramatiq

    from workers.broker import MAINTENANCE, MEDIA, QUEUES

    queues = set(QUEUES) - {MEDIA, MAINTENANCE}
    running = dramatiq.Worker(broker, queues=queues, worker_threads=2, worker_timeout=100)
    running.start()

    def drain() -> None:
        for queue in queues:
            broker.join(queue, interval=10, timeout=20_000)
        running.join()

    running.drain = drain
    yield running
    running.stop(timeout=5_000)


def post(client, platform: str, body: dict | str) -> None:
    """Send a webhook signed as the platform signs it; the endpoint must accept it."""
    signed_body, headers = signed(
        platform, payload(platform, body) if isinstance(body, str) else body
    )
    response = client.post(f"/api/v1/webhooks/{platform}", data=signed_body, headers=headers)
    assert response.status_code == 200


def deliver(client, worker, platform: str, *bodies) -> None:
    """Post each body and let the worker finish it before the next (platforms reorder too)."""
    for body in bodies:
        post(client, platform, body)
        worker.drain()


def live_events(org) -> list[dict]:
    events, complete = live.events_since(org.id, 0)
    assert complete
    return events


def reply(conversation: Conversation, external_id: str | None = None) -> Message:
    """A staff reply SNORQ sent (and the platform accepted as ``external_id``)."""
    message, _ = messages.create_outbound(conversation, user_id=None, content="Avec plaisir 🙂")
    if external_id is not None:
        messages.record_sent(message, external_id)
        # Sent just before the receipts in the fixtures (they are dated 2026-01-01 00:01).
        sent_at = datetime.datetime(2026, 1, 1, 0, 0)
        Message.update(sent_at=sent_at).where(Message.id == message.id).execute()
    return Message.get_by_id(message.id)


def original(platform: str, event: str) -> dict:
    """The message as the platform described it in the fixture (kept as the payload)."""
    body = payload(platform, event)
    if platform == "whatsapp":
        return body["entry"][0]["changes"][0]["value"]["messages"][0]
    if platform == "facebook":
        return body["entry"][0]["messaging"][0]
    return json.loads(body["content"])


def only_conversation() -> Conversation:
    [conversation] = Conversation.select()
    return conversation


# -- one message, end to end -----------------------------------------------------------


@pytest.mark.parametrize("platform", ["whatsapp", "facebook", "tiktok"])
def test_a_message_is_stored_once_in_its_organizations_conversation(
    client, worker, connections, org, other_org, platform
):
    event, text = FIRST_MESSAGES[platform]
    deliver(client, worker, platform, event)

    [message] = Message.select()
    assert (message.organization_id, message.connection_id) == (org.id, connections[platform].id)
    assert (message.direction, message.status) == (Direction.INBOUND, MessageStatus.RECEIVED)
    assert (message.content_type, message.content) == (ContentType.TEXT, text)
    assert message.payload == original(platform, event)
    conversation = message.conversation
    assert conversation.contact.external_id == CONTACT_IDS[platform]
    assert conversation.organization_id == org.id
    assert conversation.last_message_preview == text
    assert (
        conversation.last_message_at == conversation.last_inbound_at == message.platform_timestamp
    )
    assert conversation.unread_count == 1
    assert not Conversation.select().where(Conversation.organization == other_org.id).exists()


def test_the_body_is_stored_byte_for_byte_and_marked_processed(client, worker, connections):
    body, headers = signed("whatsapp", payload("whatsapp", "text"))
    client.post("/api/v1/webhooks/whatsapp", data=body, headers=headers)
    worker.drain()
    [webhook] = WebhookEvent.select()
    assert bytes(webhook.body) == body
    assert (webhook.platform, webhook.status, webhook.error) == ("whatsapp", "PROCESSED", None)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert abs(webhook.received_at - now) < datetime.timedelta(minutes=1)
    assert webhook.received_at <= webhook.processed_at


def test_a_whatsapp_contact_carries_its_number_name_and_username(client, worker, connections):
    deliver(client, worker, "whatsapp", "text")
    [contact] = Contact.select()
    assert (contact.platform, contact.external_id, contact.phone) == (
        "whatsapp",
        "US.13491208655302741918",
        "16505551234",
    )
    assert (contact.display_name, contact.username) == ("Zoë Ångström", "zoe.angstrom")


def test_a_contact_known_by_number_is_found_again_when_its_bsuid_appears(
    client, worker, connections
):
    older = payload("whatsapp", "text")
    value = older["entry"][0]["changes"][0]["value"]
    del value["contacts"][0]["user_id"], value["messages"][0]["from_user_id"]
    value["messages"][0]["id"] = "wamid.OLDER"
    deliver(client, worker, "whatsapp", older, "text")
    [contact] = Contact.select()
    assert (contact.external_id, contact.phone) == ("US.13491208655302741918", "16505551234")
    assert only_conversation().unread_count == 2


def test_a_media_message_keeps_its_file_to_fetch(client, worker, connections):
    deliver(client, worker, "whatsapp", "document")
    [attachment] = Attachment.select()
    assert attachment.message.content == "[Document: Rechnung_März_2026.pdf]"
    assert (attachment.kind, attachment.platform_media_id) == ("document", "1234567890987654")
    assert (attachment.mime_type, attachment.filename) == (
        "application/pdf",
        "Rechnung_März_2026.pdf",
    )
    assert attachment.status == "PENDING"


def test_the_preview_is_the_first_100_characters(client, worker, connections):
    long = payload("facebook", "message")
    long["entry"][0]["messaging"][0]["message"]["text"] = "é" * 99 + "👋" + "tail"
    deliver(client, worker, "facebook", long)
    assert only_conversation().last_message_preview == "é" * 99 + "👋"


def test_a_system_notice_neither_counts_unread_nor_opens_the_window(client, worker, connections):
    deliver(client, worker, "whatsapp", "system")
    conversation = only_conversation()
    assert conversation.unread_count == 0 and conversation.last_inbound_at is None
    assert conversation.last_message_preview.startswith("User Zoë changed")


def test_live_events_follow_in_order_with_sequence_numbers(
    client, worker, connections, org, other_org
):
    deliver(client, worker, "whatsapp", "text", "image", "location")
    events = live_events(org)
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert [e["type"] for e in events] == ["new:message"] * 3
    assert [e["data"]["message"]["content"] for e in events] == [
        "Hé 👋 puis-je changer ma commande ? https://example.com/o/42",
        "Voilà la facture 🧾",
        "[Location: 48.8539, 2.3336]",
    ]
    assert events[2]["data"]["conversation"]["unread_count"] == 3
    assert events[0]["data"]["conversation"]["contact"]["display_name"] == "Zoë Ångström"
    assert live_events(other_org) == []


# -- exactly once ----------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["whatsapp", "facebook", "tiktok"])
def test_a_webhook_delivered_twice_stores_one_message(client, worker, connections, org, platform):
    event, _ = FIRST_MESSAGES[platform]
    deliver(client, worker, platform, event, event)
    assert WebhookEvent.select().where(WebhookEvent.status == "PROCESSED").count() == 2
    assert Message.select().count() == 1
    assert only_conversation().unread_count == 1
    assert len(live_events(org)) == 1


def collide(monkeypatch, platform: str) -> threading.Barrier:
    """Make the next two webhooks of ``platform`` start being applied at the same moment.

    Both workers wait for each other once they have parsed their body, then go on
    together into their transactions.
    """
    adapter = PLATFORMS[platform]
    barrier = threading.Barrier(2, timeout=10)
    original = adapter.parse

    def together(body):
        events = original(body)
        barrier.wait()
        return events

    monkeypatch.setattr(adapter, "parse", together)
    return barrier


def test_copies_processed_at_the_same_moment_by_two_workers_store_one_message(
    client, worker, connections, org, monkeypatch
):
    barrier = collide(monkeypatch, "whatsapp")
    post(client, "whatsapp", "text")
    post(client, "whatsapp", "text")
    worker.drain()
    assert not barrier.broken
    assert Message.select().count() == 1
    assert only_conversation().unread_count == 1
    assert [e["type"] for e in live_events(org)] == ["new:message"]


def test_two_first_messages_of_a_new_customer_at_once_share_one_contact_and_conversation(
    client, worker, connections, monkeypatch
):
    barrier = collide(monkeypatch, "tiktok")
    post(client, "tiktok", "im_receive_msg")
    post(client, "tiktok", "im_receive_msg_image")
    worker.drain()
    assert not barrier.broken
    assert (Contact.select().count(), Conversation.select().count()) == (1, 1)
    assert Message.select().count() == 2
    assert only_conversation().unread_count == 2


# -- statuses ----------------------------------------------------------------------------------


@pytest.fixture
def whatsapp_reply(client, worker, connections) -> Message:
    """A SNORQ reply in Zoë's WhatsApp conversation, accepted by WhatsApp."""
    deliver(client, worker, "whatsapp", "text")
    return reply(only_conversation(), OUTBOUND_WAMID)


def test_statuses_move_a_reply_forward_with_a_time_for_each(client, worker, whatsapp_reply):
    deliver(client, worker, "whatsapp", "status_sent", "status_delivered", "status_read")
    message = Message.get_by_id(whatsapp_reply.id)
    assert message.status == MessageStatus.READ
    assert message.delivered_at == datetime.datetime(2026, 1, 1, 0, 1, 50)
    assert message.read_at == datetime.datetime(2026, 1, 1, 0, 2)


def test_a_late_delivered_does_not_undo_read(client, worker, whatsapp_reply, org):
    deliver(client, worker, "whatsapp", "status_read", "status_delivered", "status_read")
    message = Message.get_by_id(whatsapp_reply.id)
    assert message.status == MessageStatus.READ
    assert message.read_at == datetime.datetime(2026, 1, 1, 0, 2)
    statuses = [e for e in live_events(org) if e["type"] == "message:status"]
    assert [e["data"]["message"]["status"] for e in statuses] == ["READ"]


def test_a_failed_status_records_snorqs_code_and_whatsapps_reason(client, worker, whatsapp_reply):
    deliver(client, worker, "whatsapp", "status_failed", "status_delivered")
    message = Message.get_by_id(whatsapp_reply.id)
    assert message.status == MessageStatus.FAILED
    assert message.error_code == ErrorCode.INVALID_RECIPIENT
    assert message.error_message == "WhatsApp error 131026: Message undeliverable"
    assert message.failed_at == datetime.datetime(2026, 1, 1, 0, 1, 45)


def test_a_status_before_the_send_recorded_its_id_is_applied_when_the_id_arrives(
    client, worker, connections
):
    deliver(client, worker, "whatsapp", "text", "status_delivered")
    pending = reply(only_conversation())
    assert pending.status == MessageStatus.PENDING

    messages.record_sent(pending, OUTBOUND_WAMID)

    message = Message.get_by_id(pending.id)
    assert (message.status, message.external_id) == (MessageStatus.DELIVERED, OUTBOUND_WAMID)
    assert message.delivered_at == datetime.datetime(2026, 1, 1, 0, 1, 50)


def test_a_status_naming_snorqs_message_links_it_before_the_send_returns(
    client, worker, connections
):
    deliver(client, worker, "whatsapp", "text")
    pending = reply(only_conversation())
    sent = payload("whatsapp", "status_sent")
    sent["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = (
        f"snorq:{pending.id}"
    )
    deliver(client, worker, "whatsapp", sent)
    assert Message.get_by_id(pending.id).external_id == OUTBOUND_WAMID

    messages.record_sent(pending, OUTBOUND_WAMID)

    assert Message.select().where(Message.direction == Direction.OUTBOUND).count() == 1
    assert Message.get_by_id(pending.id).status == MessageStatus.SENT


# -- echoes of the business's own sends ----------------------------------------------------


@pytest.fixture
def messenger_conversation(client, worker, connections) -> Conversation:
    deliver(client, worker, "facebook", "message")
    return only_conversation()


def echo_of(message: Message) -> dict:
    body = payload("facebook", "message_echo")
    body["entry"][0]["messaging"][0]["message"]["metadata"] = f"snorq:{message.id}"
    return body


def test_an_echo_of_snorqs_own_send_does_not_store_a_second_message(
    client, worker, messenger_conversation
):
    sent = reply(messenger_conversation, "m_ECHO0001SNORQ")
    deliver(client, worker, "facebook", echo_of(sent))
    assert Message.select().where(Message.direction == Direction.OUTBOUND).count() == 1


def test_an_echo_arriving_before_the_send_returns_marks_snorqs_message_sent(
    client, worker, messenger_conversation
):
    pending = reply(messenger_conversation)
    deliver(client, worker, "facebook", echo_of(pending))
    messages.record_sent(pending, "m_ECHO0001SNORQ")
    [outbound] = Message.select().where(Message.direction == Direction.OUTBOUND)
    assert (outbound.id, outbound.status, outbound.external_id) == (
        pending.id,
        MessageStatus.SENT,
        "m_ECHO0001SNORQ",
    )


def test_a_reply_from_the_page_inbox_is_stored_as_sent(client, worker, messenger_conversation):
    deliver(client, worker, "facebook", "message_echo_page_inbox")
    [outbound] = Message.select().where(Message.direction == Direction.OUTBOUND)
    assert (outbound.status, outbound.sent_by_id) == (MessageStatus.SENT, None)
    assert outbound.conversation_id == messenger_conversation.id
    conversation = Conversation.get_by_id(messenger_conversation.id)
    assert conversation.last_message_preview == "Réponse depuis la boîte de réception 📬"
    assert conversation.unread_count == 1


def test_a_delivery_before_the_page_inbox_echo_is_applied_when_the_echo_arrives(
    client, worker, messenger_conversation
):
    delivery = payload("facebook", "delivery")
    delivery["entry"][0]["messaging"][0]["delivery"]["mids"] = ["m_ECHO0002INBOX"]
    deliver(client, worker, "facebook", delivery, "message_echo_page_inbox")
    [outbound] = Message.select().where(Message.direction == Direction.OUTBOUND)
    assert outbound.status == MessageStatus.DELIVERED


def test_a_tiktok_echo_of_a_recorded_send_does_not_store_a_second_message(
    client, worker, connections
):
    deliver(client, worker, "tiktok", "im_receive_msg")
    reply(only_conversation(), "7412345678901234600")
    deliver(client, worker, "tiktok", "im_send_msg")
    assert Message.select().where(Message.direction == Direction.OUTBOUND).count() == 1


def test_a_tiktok_echo_before_the_send_returns_leaves_one_message(client, worker, connections, org):
    deliver(client, worker, "tiktok", "im_receive_msg")
    pending = reply(only_conversation())
    deliver(client, worker, "tiktok", "im_send_msg")
    notices = messages.record_sent(pending, "7412345678901234600")
    [outbound] = Message.select().where(Message.direction == Direction.OUTBOUND)
    assert (outbound.id, outbound.external_id) == (pending.id, "7412345678901234600")
    assert "message:deleted" in [n.type for n in notices]


def tiktok_echo(text: str, message_id: str, at: datetime.datetime) -> dict:
    """TikTok's echo of a text the business sent, named ``message_id``, made ``at``."""
    body = payload("tiktok", "im_send_msg")
    content = json.loads(body["content"])
    content.update(message_id=message_id, timestamp=millis(at))
    content["text"]["body"] = text
    body["content"] = json.dumps(content)
    return body


def unconfirmed(conversation: Conversation, text: str, *, sending: bool = False) -> Message:
    """A reply whose send is under way (``sending``), or whose answer never came."""
    message, _ = messages.create_outbound(conversation, user_id=None, content=text)
    settle_by = utcnow() + datetime.timedelta(minutes=10)
    if sending:
        messages.claim_send(message.id, "Sending to TikTok…", settle_by=settle_by)
    else:
        messages.record_unconfirmed(message.id, "TikTok never answered.", settle_by=settle_by)
    return Message.get_by_id(message.id)


def outbound_messages() -> list[tuple]:
    rows = Message.select().where(Message.direction == Direction.OUTBOUND).order_by(Message.id)
    return [(m.id, m.status, m.external_id, m.error_code) for m in rows]


def test_a_tiktok_echo_settles_the_reply_whose_answer_was_lost(client, worker, connections):
    deliver(client, worker, "tiktok", "im_receive_msg")
    lost = unconfirmed(only_conversation(), "Chega amanhã 📦")
    soon = utcnow() + datetime.timedelta(seconds=1)
    deliver(client, worker, "tiktok", tiktok_echo("Chega amanhã 📦", "7400000000000000001", soon))
    assert outbound_messages() == [(lost.id, MessageStatus.SENT, "7400000000000000001", None)]


def test_a_tiktok_echo_before_the_answer_settles_the_reply_being_sent_and_the_answer_adds_nothing(
    client, worker, connections, org
):
    deliver(client, worker, "tiktok", "im_receive_msg")
    sending = unconfirmed(only_conversation(), "Chega amanhã 📦", sending=True)
    soon = utcnow() + datetime.timedelta(seconds=1)
    deliver(client, worker, "tiktok", tiktok_echo("Chega amanhã 📦", "7400000000000000002", soon))
    notices = messages.record_sent(sending, "7400000000000000002")
    assert outbound_messages() == [(sending.id, MessageStatus.SENT, "7400000000000000002", None)]
    assert notices == []
    assert "message:deleted" not in [event["type"] for event in live_events(org)]


def test_tiktok_echoes_of_the_same_text_settle_the_unconfirmed_replies_oldest_first(
    client, worker, connections
):
    deliver(client, worker, "tiktok", "im_receive_msg")
    conversation = only_conversation()
    first, second = (unconfirmed(conversation, "Obrigado!") for _ in range(2))
    other = unconfirmed(conversation, "Até logo")
    soon = utcnow() + datetime.timedelta(seconds=1)
    deliver(client, worker, "tiktok", tiktok_echo("Obrigado!", "7400000000000000003", soon))
    deliver(client, worker, "tiktok", tiktok_echo("Obrigado!", "7400000000000000004", soon))
    assert outbound_messages() == [
        (first.id, MessageStatus.SENT, "7400000000000000003", None),
        (second.id, MessageStatus.SENT, "7400000000000000004", None),
        (other.id, MessageStatus.PENDING, None, ErrorCode.SEND_UNCONFIRMED),
    ]


def test_a_tiktok_echo_made_before_the_reply_was_written_is_a_message_of_its_own(
    client, worker, connections
):
    deliver(client, worker, "tiktok", "im_receive_msg")
    earlier = utcnow() - datetime.timedelta(minutes=1)
    reply = unconfirmed(only_conversation(), "Obrigado!")
    deliver(client, worker, "tiktok", tiktok_echo("Obrigado!", "7400000000000000005", earlier))
    [pending, echo] = outbound_messages()
    assert pending == (reply.id, MessageStatus.PENDING, None, ErrorCode.SEND_UNCONFIRMED)
    assert echo[1:] == (MessageStatus.SENT, "7400000000000000005", None)


# -- watermarks ----------------------------------------------------------------------------


def millis(at: datetime.datetime) -> int:
    return int(at.replace(tzinfo=datetime.UTC).timestamp() * 1000)


def test_a_messenger_read_marks_every_earlier_reply_read(client, worker, messenger_conversation):
    first = reply(messenger_conversation, "m_OUT0001")
    second = reply(messenger_conversation, "m_OUT0002")
    later = reply(messenger_conversation, "m_OUT0003")
    Message.update(sent_at=second.sent_at + datetime.timedelta(minutes=5)).where(
        Message.id == later.id
    ).execute()
    read = payload("facebook", "read")
    read["entry"][0]["messaging"][0]["read"]["watermark"] = millis(second.sent_at) + 1
    deliver(client, worker, "facebook", read)
    statuses = {m.id: m.status for m in Message.select().where(Message.direction == "OUTBOUND")}
    assert statuses == {
        first.id: MessageStatus.READ,
        second.id: MessageStatus.READ,
        later.id: MessageStatus.SENT,
    }


def test_a_messenger_delivery_marks_named_and_earlier_replies_delivered(
    client, worker, messenger_conversation
):
    named = reply(messenger_conversation, "m_OUT0001")
    earlier = reply(messenger_conversation, "m_OUT0009")
    delivery = payload("facebook", "delivery")
    delivery["entry"][0]["messaging"][0]["delivery"]["watermark"] = millis(earlier.sent_at) + 1
    deliver(client, worker, "facebook", delivery)
    assert Message.get_by_id(named.id).status == MessageStatus.DELIVERED
    assert Message.get_by_id(earlier.id).status == MessageStatus.DELIVERED


def test_a_tiktok_read_marks_the_customers_earlier_replies_read(client, worker, connections):
    deliver(client, worker, "tiktok", "im_receive_msg")
    sent = reply(only_conversation(), "7412345678901234600")
    read = payload("tiktok", "im_mark_read_msg")
    content = json.loads(read["content"])
    content["read"]["last_read_timestamp"] = millis(sent.sent_at) + 1
    read["content"] = json.dumps(content)
    deliver(client, worker, "tiktok", read)
    message = Message.get_by_id(sent.id)
    assert message.status == MessageStatus.READ
    assert message.delivered_at is not None


# -- batches ---------------------------------------------------------------------------------


def test_every_message_and_status_of_a_whatsapp_batch_is_applied(client, worker, connections):
    deliver(client, worker, "whatsapp", "text")
    conversation = only_conversation()
    replies = {
        wamid: reply(conversation, wamid) for wamid in ("wamid.OUT1", "wamid.OUT2", "wamid.OUT3")
    }
    deliver(client, worker, "whatsapp", "batch")
    inbound = Message.select().where(Message.direction == Direction.INBOUND)
    assert {m.external_id for m in inbound} >= {
        "wamid.BATCH1",
        "wamid.BATCH2",
        "wamid.BATCH3",
        "wamid.BATCH4",
    }
    assert Conversation.select().count() == 2
    assert {wamid: Message.get_by_id(m.id).status for wamid, m in replies.items()} == {
        "wamid.OUT1": MessageStatus.DELIVERED,
        "wamid.OUT2": MessageStatus.READ,
        "wamid.OUT3": MessageStatus.SENT,
    }
    amina = Conversation.get(Conversation.contact == Contact.get(display_name="Amina Diallo"))
    assert (amina.unread_count, amina.last_message_preview) == (2, "Merci 🙏")


def test_every_entry_of_a_messenger_batch_is_applied(client, worker, connections):
    deliver(client, worker, "facebook", "batch")
    assert {m.external_id for m in Message.select()} == {"m_BATCH1", "m_BATCH2", "m_BATCH3"}
    assert Conversation.select().count() == 2


# -- what must not land anywhere ---------------------------------------------------------------


def unprocessed(platform: str, reason: str) -> float:
    """How many webhooks this process counted as stored without their events, for ``reason``."""
    labels = {"platform": platform, "reason": reason}
    return REGISTRY.get_sample_value("snorq_webhooks_unprocessed_total", labels) or 0.0


def test_an_unknown_account_is_recorded_and_reported_but_lands_nowhere(
    client, worker, connections, org, other_org
):
    unknown = payload("whatsapp", "text")
    unknown["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999000999"
    counted = unprocessed("whatsapp", "unknown_account")
    deliver(client, worker, "whatsapp", unknown)
    [webhook] = WebhookEvent.select()
    assert (webhook.status, webhook.error) == (WebhookStatus.FAILED, "unknown account: 999000999")
    assert unprocessed("whatsapp", "unknown_account") == counted + 1
    assert not (
        Message.select().exists() or Contact.select().exists() or Conversation.select().exists()
    )
    assert live_events(org) == [] and live_events(other_org) == []


def test_a_batch_with_an_unknown_account_still_applies_the_known_ones(client, worker, connections):
    batch = payload("facebook", "batch")
    batch["entry"][1]["id"] = "5550005550"
    deliver(client, worker, "facebook", batch)
    assert {m.external_id for m in Message.select()} == {"m_BATCH1", "m_BATCH2"}
    [webhook] = WebhookEvent.select()
    assert webhook.error == "unknown account: 5550005550"


def test_a_connection_of_another_organization_never_receives_this_accounts_messages(
    client, worker, org, other_org
):
    from tests.fixtures import make_connection

    make_connection(other_org, "facebook", "5550005550")
    make_connection(org, "facebook")
    deliver(client, worker, "facebook", "message")
    assert {m.organization_id for m in Message.select()} == {org.id}
    assert live_events(other_org) == []


@pytest.mark.parametrize(
    ("platform", "body", "error"),
    [
        (
            "whatsapp",
            b'{"object":"whatsapp_business_account","entry":"oops"}',
            "body.entry must be a list",
        ),
        ("facebook", b"this is not json", "body is not UTF-8 JSON"),
        (
            "tiktok",
            b'{"event":"im_receive_msg","user_openid":"7312345678901","content":"{oops"}',
            "body.content is not UTF-8 JSON",
        ),
    ],
)
def test_a_malformed_body_with_a_valid_signature_is_kept_failed_and_never_retried(
    client, worker, connections, platform, body, error
):
    headers = tiktok_headers(body) if platform == "tiktok" else meta_headers(platform, body)
    counted = unprocessed(platform, "parse_error")
    assert (
        client.post(f"/api/v1/webhooks/{platform}", data=body, headers=headers).status_code == 200
    )
    worker.drain()

    [webhook] = WebhookEvent.select()
    assert (webhook.status, webhook.error) == (WebhookStatus.FAILED, f"malformed payload: {error}")
    assert bytes(webhook.body) == body
    assert unprocessed(platform, "parse_error") == counted + 1
    assert broker.client.zcard(f"{broker.namespace}:inbound.DQ") == 0

    event, _ = FIRST_MESSAGES[platform]
    deliver(client, worker, platform, event)
    assert Message.select().count() == 1


def test_whatsapp_errors_are_counted_and_logged_without_storing_a_message(
    client, worker, connections, caplog
):
    notices = REGISTRY.get_sample_value("snorq_platform_notices_total", {"platform": "whatsapp"})
    deliver(client, worker, "whatsapp", "errors")
    after = REGISTRY.get_sample_value("snorq_platform_notices_total", {"platform": "whatsapp"})
    assert after == (notices or 0) + 1
    assert "131000" in caplog.text
    assert not Message.select().exists()


def test_no_customer_text_reaches_the_log(client, worker, connections, caplog):
    unknown = payload("whatsapp", "text")
    unknown["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999000999"
    spoiled = payload("whatsapp", "text")
    spoiled["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = "puis-je"
    deliver(client, worker, "whatsapp", unknown, spoiled, "text")
    assert "puis-je" not in caplog.text and "Zoë" not in caplog.text


# -- connections -------------------------------------------------------------------------------


def test_a_removed_tiktok_authorization_asks_for_a_reconnect(client, worker, connections, org):
    deliver(client, worker, "tiktok", "authorization_removed")
    connection = PlatformConnection.get_by_id(connections["tiktok"].id)
    assert connection.status == ConnectionStatus.NEEDS_REAUTH
    assert "disconnected SNORQ in TikTok" in connection.status_reason
    assert [e["type"] for e in live_events(org)] == ["connection:status"]


def test_a_body_meta_escaped_differently_is_still_the_same_message(client, worker, connections):
    raw = json.dumps(payload("whatsapp", "text"), ensure_ascii=False).encode()
    assert raw != meta_body(payload("whatsapp", "text"))
    headers = meta_headers("whatsapp", raw)
    client.post("/api/v1/webhooks/whatsapp", data=raw, headers=headers)
    deliver(client, worker, "whatsapp", "text")
    assert Message.select().count() == 1


# -- a webhook is applied whole, or kept for another try ------------------------------------


def test_a_failure_half_way_applies_nothing_and_keeps_the_body_for_the_retry(
    connections, monkeypatch
):
    from workers.inbound import ingest_webhooks

    body, _ = signed("whatsapp", payload("whatsapp", "batch"))
    delivery = ["d-1", "whatsapp", body.decode(), 1767225600.0]

    def database_gone(route, event):
        raise ConnectionError("the database went away")

    monkeypatch.setattr(messages, "apply_status", database_gone)
    with pytest.raises(ConnectionError):
        ingest_webhooks.fn([delivery])
    [kept] = WebhookEvent.select()
    assert (kept.status, bytes(kept.body)) == (WebhookStatus.RECEIVED, body)
    assert not Message.select().exists() and not Contact.select().exists()

    monkeypatch.undo()
    ingest_webhooks.fn([delivery])
    assert WebhookEvent.get().status == WebhookStatus.PROCESSED
    assert Message.select().count() == 4


def whatsapp_delivery(delivery_id: str, external_id: str) -> list:
    document = payload("whatsapp", "text")
    document["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = external_id
    return [delivery_id, "whatsapp", meta_body(document).decode(), time.time()]


def test_a_group_whose_retry_was_lost_is_kept_whole_and_processed_by_the_sweep(
    connections, monkeypatch
):
    from workers.inbound import ingest_webhooks, sweep_webhooks

    group = [whatsapp_delivery(f"d-{n}", f"wamid.SWEPT{n}") for n in range(2)]

    def database_gone(route, event):
        raise ConnectionError("the database went away")

    with monkeypatch.context() as patched:
        patched.setattr(messages, "record_message", database_gone)
        with pytest.raises(ConnectionError):
            ingest_webhooks.fn(group)
    kept = WebhookEvent.select().order_by(WebhookEvent.delivery_id)
    assert [(w.delivery_id, w.status) for w in kept] == [
        ("d-0", WebhookStatus.RECEIVED),
        ("d-1", WebhookStatus.RECEIVED),
    ]
    # The job's retry was lost (Redis was down): the sweep takes them up once they are late.
    sweep_webhooks.fn()
    assert not Message.select().exists()
    WebhookEvent.update(received_at=utcnow() - datetime.timedelta(minutes=6)).execute()
    sweep_webhooks.fn()
    assert {w.status for w in WebhookEvent.select()} == {WebhookStatus.PROCESSED}
    assert sorted(m.external_id for m in Message.select()) == ["wamid.SWEPT0", "wamid.SWEPT1"]


def test_a_group_of_webhooks_is_stored_in_one_commit_with_its_events_published_together_after(
    connections, monkeypatch
):
    from app.db import database
    from workers.inbound import ingest_webhooks

    group = [whatsapp_delivery(f"d-{n}", f"wamid.GROUP{n}") for n in range(3)]
    commits, published = [], []
    commit = type(database.obj).commit

    def counted(self):
        commits.append(len(published))
        return commit(self)

    monkeypatch.setattr(type(database.obj), "commit", counted)
    monkeypatch.setattr(
        live, "publish_all", lambda events: published.append([kind for _, kind, _ in events])
    )
    ingest_webhooks.fn(group)

    assert commits == [0], "one commit, before any live event"
    assert published == [["new:message"] * 3], "the group's events in one call to Redis"
    assert sorted(m.external_id for m in Message.select()) == [f"wamid.GROUP{n}" for n in range(3)]
    assert {w.status for w in WebhookEvent.select()} == {WebhookStatus.PROCESSED}


def test_a_webhook_that_breaks_its_group_does_not_hold_back_the_ones_before_it(
    connections, monkeypatch
):
    from workers.inbound import ingest_webhooks

    group = [whatsapp_delivery(f"d-{n}", f"wamid.BROKEN{n}") for n in range(3)]
    record_message = messages.record_message

    def third_breaks(route, event):
        if event.external_id == "wamid.BROKEN2":
            raise ConnectionError("the database went away")
        return record_message(route, event)

    monkeypatch.setattr(messages, "record_message", third_breaks)
    with pytest.raises(ConnectionError):
        ingest_webhooks.fn(group)

    kept = WebhookEvent.select().order_by(WebhookEvent.delivery_id)
    assert [(w.delivery_id, w.status) for w in kept] == [
        ("d-0", WebhookStatus.PROCESSED),
        ("d-1", WebhookStatus.PROCESSED),
        ("d-2", WebhookStatus.RECEIVED),
    ]
    assert sorted(m.external_id for m in Message.select()) == ["wamid.BROKEN0", "wamid.BROKEN1"]


def test_a_webhook_received_over_a_day_ago_is_left_to_replay(connections):
    from workers.inbound import sweep_webhooks

    delivery_id, platform, body, _ = whatsapp_delivery("d-old", "wamid.OLD")
    WebhookEvent.create(
        delivery_id=delivery_id,
        platform=platform,
        body=body.encode(),
        received_at=utcnow() - datetime.timedelta(hours=25),
    )
    sweep_webhooks.fn()
    assert WebhookEvent.get().status == WebhookStatus.RECEIVED


def test_a_known_customers_message_reaches_postgresql_in_two_round_trips(connections, wire):
    from workers.inbound import ingest_webhooks

    ingest_webhooks.fn([whatsapp_delivery("d-1", "wamid.FIRST")])
    wire.clear()
    ingest_webhooks.fn([whatsapp_delivery("d-2", "wamid.SECOND")])

    # The message and its conversation's update in one statement; the body with the COMMIT.
    assert [statement.split()[0] for statement in wire] == ["BEGIN;", "EXECUTE"]
    assert wire[-1].endswith("COMMIT")
    assert [m.external_id for m in Message.select().order_by(Message.id)] == [
        "wamid.FIRST",
        "wamid.SECOND",
    ]
