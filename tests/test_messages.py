"""app/messages.py, inbound side: storing messages once, bookkeeping, statuses, watermarks."""

import datetime
import os
import threading
import time

import psycopg2
import pytest

from app import messages, routing
from app.db import database, is_postgres
from app.messages.external_ids import lock_key
from app.models import (
    Contact,
    ContentType,
    Conversation,
    Direction,
    EarlyStatus,
    Message,
    MessageStatus,
)
from app.platforms.events import ContactRef, MessageEvent, StatusEvent, WatermarkEvent
from tests.fixtures import ACCOUNT_IDS, make_connection

T0 = datetime.datetime(2026, 3, 1, 12, 0)
ZOE = ContactRef("US.1349", phone="16505551234", display_name="Zoë")
SENT, DELIVERED, READ, FAILED = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.FAILED,
)


@pytest.fixture
def route(connections) -> routing.Route:
    return routing.route("whatsapp", ACCOUNT_IDS["whatsapp"])


def inbound(external_id: str, text: str = "Bonjour 👋", at: datetime.datetime = T0, **fields):
    return MessageEvent(
        account_id=ACCOUNT_IDS["whatsapp"],
        contact=fields.pop("contact", ZOE),
        external_id=external_id,
        direction=fields.pop("direction", Direction.INBOUND),
        content_type=fields.pop("content_type", ContentType.TEXT),
        content=text,
        timestamp=at,
        **fields,
    )


def status(external_id: str, name: str, at: datetime.datetime = T0, **fields) -> StatusEvent:
    return StatusEvent(ACCOUNT_IDS["whatsapp"], external_id, name, at, **fields)


def sent_reply(route, external_id: str | None = "wamid.OUT") -> Message:
    """A SNORQ reply to Zoë, recorded as sent with ``external_id`` (None: still pending)."""
    messages.record_message(route, inbound(f"wamid.IN.{external_id}"))
    conversation = Conversation.get(Conversation.connection == route.connection_id)
    message, _ = messages.create_outbound(conversation, user_id=None, content="Merci !")
    if external_id is not None:
        messages.record_sent(message, external_id)
        # Sent just before the platform's receipts in these tests arrive.
        sent_at = T0 - datetime.timedelta(minutes=1)
        Message.update(sent_at=sent_at).where(Message.id == message.id).execute()
    return Message.get_by_id(message.id)


def at_once(*calls) -> list:
    """Run the calls in threads released together; their results, in order."""
    barrier = threading.Barrier(len(calls), timeout=10)
    results: list = [None] * len(calls)

    def run(n, call):
        barrier.wait()
        try:
            results[n] = call()
        finally:
            database.close()

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return results


# -- storing --------------------------------------------------------------------------------


def test_a_message_creates_its_contact_and_conversation_and_counts_unread(route, org):
    [notice] = messages.record_message(route, inbound("wamid.1"))
    [contact] = Contact.select()
    [conversation] = Conversation.select()
    assert (contact.organization_id, contact.external_id, contact.phone) == (
        org.id,
        "US.1349",
        "16505551234",
    )
    assert (conversation.contact_id, conversation.unread_count) == (contact.id, 1)
    assert conversation.last_message_at == conversation.last_inbound_at == T0
    assert (notice.organization_id, notice.type) == (org.id, "new:message")
    assert notice.data["conversation"]["unread_count"] == 1


def test_a_message_arriving_late_does_not_move_the_preview_or_clocks_back(route):
    later = T0 + datetime.timedelta(minutes=5)
    messages.record_message(route, inbound("wamid.2", "la suite", at=later))
    messages.record_message(route, inbound("wamid.1", "le début", at=T0))
    conversation = Conversation.get()
    assert (conversation.last_message_preview, conversation.last_message_at) == ("la suite", later)
    assert conversation.last_inbound_at == later
    assert conversation.unread_count == 2


def test_a_message_stored_before_changes_nothing_and_says_nothing(route):
    messages.record_message(route, inbound("wamid.1"))
    assert messages.record_message(route, inbound("wamid.1", "another text")) == []
    assert Message.get().content == "Bonjour 👋"
    assert Conversation.get().unread_count == 1


def test_the_same_message_stored_by_two_workers_at_once_is_stored_once(route):
    for n in range(5):
        results = at_once(
            lambda n=n: messages.record_message(route, inbound(f"wamid.{n}")),
            lambda n=n: messages.record_message(route, inbound(f"wamid.{n}")),
        )
        assert sorted(len(r) for r in results) == [0, 1]
    assert Message.select().count() == 5
    assert Conversation.get().unread_count == 5
    assert Contact.select().count() == 1


def test_a_contact_known_by_its_number_takes_its_bsuid_when_one_appears(route):
    messages.record_message(
        route, inbound("wamid.1", contact=ContactRef("16505551234", phone="16505551234"))
    )
    messages.record_message(route, inbound("wamid.2", contact=ZOE))
    [contact] = Contact.select()
    assert (contact.external_id, contact.phone, contact.display_name) == (
        "US.1349",
        "16505551234",
        "Zoë",
    )
    assert Conversation.get().unread_count == 2


def test_the_same_customer_on_two_connections_has_two_conversations(route, org):
    other = make_connection(org, "whatsapp", "200300400500")
    messages.record_message(route, inbound("wamid.1"))
    messages.record_message(routing.route("whatsapp", other.account_id), inbound("wamid.1"))
    assert Message.select().count() == 2
    assert Conversation.select().count() == 2
    assert Contact.select().count() == 1


# -- statuses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrivals", "final"),
    [
        ([SENT, DELIVERED, READ], READ),
        ([READ, DELIVERED], READ),
        ([DELIVERED, SENT], DELIVERED),
        ([READ, FAILED], READ),
        ([FAILED, DELIVERED, READ], FAILED),
        ([SENT, FAILED], FAILED),
    ],
)
def test_a_status_only_moves_forward(route, arrivals, final):
    reply = sent_reply(route)
    for n, name in enumerate(arrivals):
        messages.apply_status(route, status("wamid.OUT", name, T0 + datetime.timedelta(seconds=n)))
    assert Message.get_by_id(reply.id).status == final


def test_a_repeated_status_changes_nothing_and_says_nothing(route):
    reply = sent_reply(route)
    assert len(messages.apply_status(route, status("wamid.OUT", DELIVERED))) == 1
    again = status("wamid.OUT", DELIVERED, T0 + datetime.timedelta(minutes=1))
    assert messages.apply_status(route, again) == []
    assert Message.get_by_id(reply.id).delivered_at == T0


def test_each_status_keeps_its_time_and_read_fills_a_skipped_delivered(route):
    reply = sent_reply(route)
    messages.apply_status(route, status("wamid.OUT", READ, T0))
    message = Message.get_by_id(reply.id)
    assert (message.delivered_at, message.read_at) == (T0, T0)
    assert message.sent_at is not None and message.sent_at != T0


def test_a_failed_status_keeps_its_code_and_reason(route):
    reply = sent_reply(route)
    messages.apply_status(
        route,
        status("wamid.OUT", FAILED, error_code=2004, error_message="WhatsApp error 131026: …"),
    )
    message = Message.get_by_id(reply.id)
    assert (message.status, message.error_code, message.failed_at) == (FAILED, 2004, T0)


def test_a_status_for_another_connections_id_is_kept_apart(route, org):
    reply = sent_reply(route)
    other = routing.route("whatsapp", make_connection(org, "whatsapp", "200300400500").account_id)
    messages.apply_status(other, status("wamid.OUT", READ))
    assert Message.get_by_id(reply.id).status == SENT
    assert EarlyStatus.get().connection_id == other.connection_id


def test_statuses_before_the_id_is_known_are_applied_in_order_when_it_is(route):
    messages.apply_status(route, status("wamid.LATE", READ, T0 + datetime.timedelta(seconds=2)))
    messages.apply_status(
        route, status("wamid.LATE", DELIVERED, T0 + datetime.timedelta(seconds=1))
    )
    pending = sent_reply(route, None)

    notices = messages.record_sent(pending, "wamid.LATE")

    message = Message.get_by_id(pending.id)
    assert message.status == READ
    assert (message.delivered_at, message.read_at) == (
        T0 + datetime.timedelta(seconds=1),
        T0 + datetime.timedelta(seconds=2),
    )
    assert [n.type for n in notices] == ["message:sent", "message:status", "message:status"]
    assert not EarlyStatus.select().exists()


def test_an_early_status_racing_the_send_that_records_its_id_is_never_lost(route):
    pending = [sent_reply(route, None) for _ in range(6)]
    for n, message in enumerate(pending):
        at_once(
            lambda n=n: messages.apply_status(route, status(f"wamid.RACE{n}", DELIVERED)),
            lambda n=n, message=message: messages.record_sent(message, f"wamid.RACE{n}"),
        )
    assert {Message.get_by_id(m.id).status for m in pending} == {DELIVERED}
    assert not EarlyStatus.select().exists()


def test_a_send_waiting_for_its_ids_lock_applies_the_status_kept_by_the_holder(route):
    """The send's check for early statuses travels with its lock (app/db.py): it must
    still read as of holding the lock, not as of when it asked for it."""
    if not is_postgres():
        pytest.skip("SQLite runs one write transaction at a time")
    pending = sent_reply(route, None)
    holder = psycopg2.connect(os.environ["DATABASE_URL"])
    try:
        with holder.cursor() as cursor:
            # The lock a status keeper takes (lock_external_id), held open meanwhile.
            key = lock_key("wamid.HELD")
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", (route.connection_id, key))
            sending = threading.Thread(
                target=lambda: (messages.record_sent(pending, "wamid.HELD"), database.close())
            )
            sending.start()
            deadline = time.monotonic() + 10
            while not _waiting_for_an_advisory_lock(cursor) and time.monotonic() < deadline:
                time.sleep(0.01)
            cursor.execute(
                "INSERT INTO early_status (connection_id, external_id, status, occurred_at,"
                " created_at) VALUES (%s, 'wamid.HELD', %s, %s, now())",
                (route.connection_id, DELIVERED, T0),
            )
        holder.commit()
        sending.join(10)
    finally:
        holder.close()
    assert Message.get_by_id(pending.id).status == DELIVERED
    assert not EarlyStatus.select().exists()


def _waiting_for_an_advisory_lock(cursor) -> bool:
    cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    return cursor.fetchone()[0] > 0


def test_a_status_naming_snorqs_message_links_the_id_itself(route):
    pending = sent_reply(route, None)
    messages.apply_status(route, status("wamid.X", DELIVERED, snorq_message_id=pending.id))
    message = Message.get_by_id(pending.id)
    assert (message.external_id, message.status) == ("wamid.X", DELIVERED)


# -- watermarks -----------------------------------------------------------------------------


def test_a_watermark_reaches_the_contacts_replies_sent_up_to_it_and_no_others(route):
    first = sent_reply(route, "wamid.A")
    second = sent_reply(route, "wamid.B")
    pending = sent_reply(route, None)
    later = sent_reply(route, "wamid.C")
    Message.update(sent_at=second.sent_at + datetime.timedelta(hours=1)).where(
        Message.id == later.id
    ).execute()
    others = ContactRef("US.9999")
    messages.record_message(route, inbound("wamid.OTHER", contact=others))
    other_conversation = Conversation.get(
        Conversation.contact == Contact.get(external_id="US.9999")
    )
    theirs, _ = messages.create_outbound(other_conversation, user_id=None, content="…")
    messages.record_sent(theirs, "wamid.THEIRS")

    watermark = WatermarkEvent(ACCOUNT_IDS["whatsapp"], "US.1349", READ, second.sent_at)
    notices = messages.apply_watermark(route, watermark)

    statuses = {m.id: m.status for m in Message.select()}
    assert statuses[first.id] == statuses[second.id] == READ
    assert (statuses[pending.id], statuses[later.id], statuses[theirs.id]) == (
        "PENDING",
        SENT,
        SENT,
    )
    assert {n.data["message"]["id"] for n in notices} == {first.id, second.id}
    assert (
        Message.select()
        .where(Message.direction == Direction.INBOUND, Message.status == READ)
        .count()
        == 0
    )


# -- echoes ----------------------------------------------------------------------------------


def test_an_echo_naming_snorqs_sent_message_stores_nothing(route):
    reply = sent_reply(route)
    echo = inbound("wamid.OUT", "Merci !", direction=Direction.OUTBOUND, snorq_message_id=reply.id)
    assert messages.record_message(route, echo) == []
    assert Message.select().where(Message.direction == Direction.OUTBOUND).count() == 1


def test_an_echo_naming_a_message_of_another_connection_is_stored_as_an_echo(route, org):
    reply = sent_reply(route)
    other = routing.route("whatsapp", make_connection(org, "whatsapp", "200300400500").account_id)
    echo = inbound("wamid.ELSE", "…", direction=Direction.OUTBOUND, snorq_message_id=reply.id)
    messages.record_message(other, echo)
    stored = Message.get(Message.external_id == "wamid.ELSE")
    assert (stored.connection_id, stored.status) == (other.connection_id, SENT)
    assert Message.get_by_id(reply.id).external_id == "wamid.OUT"


def test_a_receipt_stamped_before_the_send_was_recorded_is_not_stamped_earlier(route):
    reply = sent_reply(route)
    recorded = T0 + datetime.timedelta(seconds=30, milliseconds=217)
    Message.update(sent_at=recorded).where(Message.id == reply.id).execute()

    messages.apply_status(
        route, status("wamid.OUT", DELIVERED, T0 + datetime.timedelta(seconds=30))
    )
    messages.apply_status(route, status("wamid.OUT", READ, T0 + datetime.timedelta(seconds=31)))

    stored = Message.get_by_id(reply.id)
    assert stored.sent_at == stored.delivered_at == recorded
    assert stored.read_at == T0 + datetime.timedelta(seconds=31)
