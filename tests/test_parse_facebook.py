"""Messenger webhooks parsed into SNORQ's events (PLATFORMS.md, section 3)."""

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.models import ContentType, Direction, MessageStatus
from app.platforms.errors import ParseError
from app.platforms.events import ContactRef, MediaRef, MessageEvent, StatusEvent, WatermarkEvent
from app.platforms.facebook import parse_webhook
from tests.payloads import mutations, payload
from tests.support import meta_body

PAGE_ID = "1234567890"
PSID = "6789012345678901"


def parse(event_or_payload) -> list:
    if isinstance(event_or_payload, str):
        event_or_payload = payload("facebook", event_or_payload)
    return parse_webhook(meta_body(event_or_payload))


def item(body: dict) -> dict:
    return body["entry"][0]["messaging"][0]


@pytest.mark.parametrize(
    ("event", "content_type", "content"),
    [
        (
            "message",
            ContentType.TEXT,
            "Bonjour 👋 où en est ma commande ? https://shop.example/o/42",
        ),
        ("message_quick_reply", ContentType.INTERACTIVE, "Größe M"),
        ("message_attachments", ContentType.IMAGE, "[Attachments: 2]"),
        ("message_file", ContentType.DOCUMENT, "[Document]"),
        ("message_sticker", ContentType.STICKER, "[Sticker]"),
        ("message_fallback", ContentType.SHARE, "[Link: Les meilleures crêpes de Paris]"),
        ("postback", ContentType.POSTBACK, "Commencer 🚀"),
    ],
)
def test_each_customer_message_reads_as_its_content_type_and_preview(event, content_type, content):
    [message] = parse(event)
    original = item(payload("facebook", event))
    assert message == MessageEvent(
        account_id=PAGE_ID,
        contact=ContactRef(PSID),
        external_id=(original.get("message") or original.get("postback"))["mid"],
        direction=Direction.INBOUND,
        content_type=content_type,
        content=content,
        timestamp=datetime.datetime(2026, 1, 1),
        payload=original,
        media=message.media,
    )


def test_attachments_name_the_files_to_fetch():
    [message] = parse("message_attachments")
    assert message.media == (
        MediaRef(
            kind="image",
            url="https://scontent.xx.fbcdn.net/v/t1.15752-9/photo1.jpg?_nc_cat=1&oh=00_A",
        ),
        MediaRef(
            kind="image",
            url="https://scontent.xx.fbcdn.net/v/t1.15752-9/photo2.jpg?_nc_cat=1&oh=00_B",
        ),
    )
    [document] = parse("message_file")
    assert document.media == (
        MediaRef(
            kind="document", url="https://cdn.fbsbx.com/v/t59.2708-21/Devis_Été.pdf?_nc_cat=1"
        ),
    )


def test_a_quick_reply_keeps_its_payload_with_the_message():
    [message] = parse("message_quick_reply")
    assert message.payload["message"]["quick_reply"] == {"payload": "SIZE_M"}


def test_a_location_attachment_reads_as_its_coordinates():
    body = payload("facebook", "message_file")
    item(body)["message"]["attachments"] = [
        {"type": "location", "payload": {"coordinates": {"lat": 45.764, "long": 4.8357}}}
    ]
    [message] = parse(body)
    assert (message.content_type, message.content) == (
        ContentType.LOCATION,
        "[Location: 45.764, 4.8357]",
    )


def test_a_message_with_neither_text_nor_attachments_is_unsupported():
    body = payload("facebook", "message")
    del item(body)["message"]["text"]
    item(body)["message"]["is_unsupported"] = True
    [message] = parse(body)
    assert (message.content_type, message.content) == (
        ContentType.UNSUPPORTED,
        "[Unsupported message]",
    )


def test_an_echo_is_outbound_to_the_recipient_and_names_snorqs_message():
    [echo] = parse("message_echo")
    assert echo.direction == Direction.OUTBOUND
    assert echo.contact == ContactRef(PSID)
    assert echo.snorq_message_id == 1
    assert echo.content == "Merci ! Votre commande part demain 🚚"


def test_an_echo_of_a_page_inbox_reply_names_no_snorq_message():
    [echo] = parse("message_echo_page_inbox")
    assert (echo.direction, echo.snorq_message_id) == (Direction.OUTBOUND, None)


def test_a_customer_cannot_name_a_snorq_message_through_metadata():
    body = payload("facebook", "message")
    item(body)["message"]["metadata"] = "snorq:1"
    [message] = parse(body)
    assert message.snorq_message_id is None


def test_a_delivery_marks_each_named_message_and_everything_up_to_the_watermark():
    at = datetime.datetime(2026, 1, 1, 0, 1, 20)
    assert parse("delivery") == [
        StatusEvent(PAGE_ID, "m_OUT0001", MessageStatus.DELIVERED, at),
        StatusEvent(PAGE_ID, "m_OUT0002", MessageStatus.DELIVERED, at),
        WatermarkEvent(PAGE_ID, PSID, MessageStatus.DELIVERED, at),
    ]


def test_a_delivery_without_mids_is_only_a_watermark():
    at = datetime.datetime(2026, 1, 1, 0, 1, 20)
    assert parse("delivery_without_mids") == [
        WatermarkEvent(PAGE_ID, PSID, MessageStatus.DELIVERED, at)
    ]


def test_a_read_is_a_watermark():
    assert parse("read") == [
        WatermarkEvent(PAGE_ID, PSID, MessageStatus.READ, datetime.datetime(2026, 1, 1, 0, 1, 30))
    ]


def test_reactions_read_as_their_emoji_and_an_unreact_as_removed():
    [react] = parse("reaction")
    [unreact] = parse("unreaction")
    assert (react.content_type, react.content) == (ContentType.REACTION, "[Reaction: ❤️]")
    assert unreact.content == "[Reaction removed]"
    assert react.direction == unreact.direction == Direction.INBOUND


def test_a_reaction_gets_a_stable_id_of_its_own():
    [first] = parse("reaction")
    [again] = parse("reaction")
    [unreact] = parse("unreaction")
    assert first.external_id == again.external_id
    assert first.external_id.startswith("reaction:")
    assert len({first.external_id, unreact.external_id, "m_OUT0001"}) == 3


def test_a_reaction_by_the_page_is_outbound_to_the_customer():
    body = payload("facebook", "reaction")
    item(body)["sender"], item(body)["recipient"] = {"id": PAGE_ID}, {"id": PSID}
    [reaction] = parse(body)
    assert (reaction.direction, reaction.contact) == (Direction.OUTBOUND, ContactRef(PSID))


def test_a_postback_without_a_mid_gets_a_stable_id():
    body = payload("facebook", "postback")
    del item(body)["postback"]["mid"]
    [first], [again] = parse(body), parse(body)
    assert first.external_id == again.external_id and first.external_id.startswith("postback:")


def test_opt_ins_and_other_events_carry_nothing_to_show():
    assert parse("optin") == []


def test_every_entry_and_messaging_item_of_a_batch_is_read_in_order():
    events = parse("batch")
    assert [(type(e).__name__, getattr(e, "external_id", None)) for e in events] == [
        ("MessageEvent", "m_BATCH1"),
        ("MessageEvent", "m_BATCH2"),
        ("MessageEvent", "m_BATCH3"),
        ("StatusEvent", "m_OUT0001"),
        ("WatermarkEvent", None),
    ]
    assert events[1].contact == ContactRef("7890123456789012")


# -- bodies that are not what Messenger documents ---------------------------------------


SPOILED = {
    "another object": lambda b: b.update(object="instagram"),
    "no entries": lambda b: b.pop("entry"),
    "entry without page id": lambda b: b["entry"][0].pop("id"),
    "messaging not a list": lambda b: b["entry"][0].update(messaging={}),
    "message without mid": lambda b: item(b)["message"].pop("mid"),
    "text not a string": lambda b: item(b)["message"].update(text={"body": "Bonjour"}),
    "no sender": lambda b: item(b).pop("sender"),
    "timestamp as text": lambda b: item(b).update(timestamp="1767225600000"),
    "attachments not objects": lambda b: item(b)["message"].update(attachments=["photo.jpg"]),
    "echo flag not a boolean": lambda b: item(b)["message"].update(is_echo="yes"),
}


@pytest.mark.parametrize("spoil", SPOILED.values(), ids=SPOILED.keys())
def test_a_body_that_is_not_a_documented_payload_is_a_parse_error(spoil):
    body = payload("facebook", "message")
    spoil(body)
    with pytest.raises(ParseError):
        parse(body)


@pytest.mark.parametrize(
    ("event", "spoil"),
    [
        ("delivery", lambda b: item(b)["delivery"].pop("watermark")),
        ("delivery", lambda b: item(b)["delivery"].update(mids=[1, 2])),
        ("read", lambda b: item(b)["read"].update(watermark=None)),
        ("reaction", lambda b: item(b)["reaction"].pop("mid")),
    ],
    ids=[
        "delivery without watermark",
        "mids not ids",
        "read without watermark",
        "reaction without mid",
    ],
)
def test_a_receipt_or_reaction_missing_what_it_needs_is_a_parse_error(event, spoil):
    body = payload("facebook", event)
    spoil(body)
    with pytest.raises(ParseError):
        parse(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        ["message_attachments", "message_echo", "delivery", "reaction", "batch"]
    ).flatmap(lambda event: mutations(payload("facebook", event)))
)
def test_any_change_to_a_payload_parses_or_is_a_parse_error(body):
    try:
        events = parse(body)
    except ParseError:
        return
    assert isinstance(events, list)
