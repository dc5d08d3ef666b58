"""WhatsApp Cloud API webhooks parsed into SNORQ's events (PLATFORMS.md, section 2)."""

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.models import ContentType, Direction, MessageStatus
from app.platforms.errors import ErrorCode, ParseError
from app.platforms.events import ContactRef, MediaRef, MessageEvent, PlatformNotice, StatusEvent
from app.platforms.whatsapp import parse_webhook
from tests.payloads import mutations, payload
from tests.support import meta_body

PHONE_NUMBER_ID = "106540352242922"
ZOE = ContactRef(
    external_id="US.13491208655302741918",
    phone="16505551234",
    display_name="Zoë Ångström",
    username="zoe.angstrom",
)


def parse(event_or_payload) -> list:
    body = (
        payload("whatsapp", event_or_payload)
        if isinstance(event_or_payload, str)
        else event_or_payload
    )
    return parse_webhook(meta_body(body))


def first_message(value: dict) -> dict:
    return value["entry"][0]["changes"][0]["value"]["messages"][0]


@pytest.mark.parametrize(
    ("event", "content_type", "content"),
    [
        ("text", ContentType.TEXT, "Hé 👋 puis-je changer ma commande ? https://example.com/o/42"),
        ("image", ContentType.IMAGE, "Voilà la facture 🧾"),
        ("video", ContentType.VIDEO, "[Video]"),
        ("voice", ContentType.AUDIO, "[Voice message]"),
        ("document", ContentType.DOCUMENT, "[Document: Rechnung_März_2026.pdf]"),
        ("sticker", ContentType.STICKER, "[Sticker]"),
        ("location", ContentType.LOCATION, "[Location: 48.8539, 2.3336]"),
        ("contacts", ContentType.CONTACTS, "[Contact: José Núñez, Søren]"),
        ("interactive_button_reply", ContentType.INTERACTIVE, "Oui, confirmer ✅"),
        ("interactive_list_reply", ContentType.INTERACTIVE, "Mardi 10h30"),
        ("button", ContentType.INTERACTIVE, "Stopper les promos 🙅"),
        ("reaction", ContentType.REACTION, "[Reaction: 👍]"),
        ("unreaction", ContentType.REACTION, "[Reaction removed]"),
        ("unsupported", ContentType.UNSUPPORTED, "[Unsupported message]"),
        ("order", ContentType.UNSUPPORTED, "[Order: 2 items]"),
        ("system", ContentType.SYSTEM, "User Zoë changed from 16505551234 to 16505559876"),
    ],
)
def test_each_message_type_reads_as_its_content_type_and_preview(event, content_type, content):
    [message] = parse(event)
    original = first_message(payload("whatsapp", event))
    assert message == MessageEvent(
        account_id=PHONE_NUMBER_ID,
        contact=ZOE,
        external_id=original["id"],
        direction=Direction.INBOUND,
        content_type=content_type,
        content=content,
        timestamp=datetime.datetime(2026, 1, 1),
        payload=original,
        media=message.media,
    )


@pytest.mark.parametrize(
    ("event", "media"),
    [
        (
            "image",
            MediaRef(
                kind="image",
                media_id="1479537139650973",
                url="https://lookaside.fbsbx.com/whatsapp_business/attachments/"
                "?mid=1479537139650973&ext=1767225600&hash=ATta",
                mime_type="image/jpeg",
                sha256="Jh+2ij6PzUv/J2y+grrtegr/ZMzRxkEPwc24Oyib4s0=",
            ),
        ),
        (
            "voice",
            MediaRef(
                kind="audio",
                media_id="2238416789012345",
                mime_type="audio/ogg; codecs=opus",
                sha256="E3dxS/PdYZE7ppA3pQ4mpCFaXBJ8pX4SRN/dsfvds/g=",
            ),
        ),
        (
            "document",
            MediaRef(
                kind="document",
                media_id="1234567890987654",
                mime_type="application/pdf",
                filename="Rechnung_März_2026.pdf",
                sha256="grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc=",
            ),
        ),
        (
            "sticker",
            MediaRef(
                kind="sticker",
                media_id="874563210987654",
                mime_type="image/webp",
                sha256="OmT4nhjUhCMIPNmj7eeOZeCYjTXkLxoOv85OMCFwSuc=",
            ),
        ),
    ],
)
def test_a_media_message_names_the_file_to_fetch(event, media):
    [message] = parse(event)
    assert message.media == (media,)


@pytest.mark.parametrize("event", ["text", "location", "reaction", "contacts", "button"])
def test_a_message_without_a_file_has_no_media(event):
    [message] = parse(event)
    assert message.media == ()


def test_an_audio_file_that_is_not_a_voice_note_reads_as_audio():
    body = payload("whatsapp", "voice")
    first_message(body)["audio"]["voice"] = False
    [message] = parse(body)
    assert (message.content_type, message.content) == (ContentType.AUDIO, "[Audio]")
    assert message.media[0].kind == "audio"


def test_the_original_message_is_kept_with_its_reply_context():
    [message] = parse("interactive_button_reply")
    assert message.payload["context"] == {
        "from": "15550783881",
        "id": "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI4QjA=",
    }
    assert message.payload["interactive"]["button_reply"]["id"] == "confirm-42"


def test_an_older_payload_keys_the_contact_on_the_phone_number():
    [message] = parse("text_phone_only")
    assert message.contact == ContactRef(
        external_id="4915112345678", phone="4915112345678", display_name="Jürgen Weiß"
    )


def test_a_username_user_without_a_phone_number_is_keyed_on_the_bsuid():
    [message] = parse("text_username_only")
    assert message.contact == ContactRef(
        external_id="JP.88120034455667788", display_name="田中 愛子", username="aiko_tanaka"
    )


def test_the_bsuid_is_taken_from_the_contacts_list_when_the_message_has_only_the_number():
    body = payload("whatsapp", "text")
    del first_message(body)["from_user_id"]
    [message] = parse(body)
    assert message.contact == ZOE


def test_a_changed_user_id_stays_in_the_thread_of_the_previous_id():
    body = payload("whatsapp", "system")
    value = body["entry"][0]["changes"][0]["value"]
    del value["contacts"]
    value["messages"][0] = {
        "id": "wamid.SYSTEMUSERID",
        "timestamp": "1767225600",
        "type": "system",
        "system": {
            "body": "User changed from US.13491208655302741918 to US.99",
            "user_id": "US.99",
            "previous_user_id": "US.13491208655302741918",
            "type": "user_changed_user_id",
        },
    }
    [message] = parse(body)
    assert message.contact == ContactRef(external_id="US.13491208655302741918")
    assert message.content_type == ContentType.SYSTEM


@pytest.mark.parametrize(
    ("event", "status", "at"),
    [
        ("status_sent", MessageStatus.SENT, datetime.datetime(2026, 1, 1, 0, 1, 40)),
        ("status_delivered", MessageStatus.DELIVERED, datetime.datetime(2026, 1, 1, 0, 1, 50)),
        ("status_read", MessageStatus.READ, datetime.datetime(2026, 1, 1, 0, 2)),
    ],
)
def test_statuses_become_status_events_with_their_time(event, status, at):
    [event] = parse(event)
    assert event == StatusEvent(
        account_id=PHONE_NUMBER_ID,
        external_id="wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJPVVQx",
        status=status,
        timestamp=at,
        snorq_message_id=event.snorq_message_id,
    )


def test_a_status_names_snorqs_message_from_the_echoed_callback_data():
    [sent] = parse("status_sent")
    [delivered] = parse("status_delivered")
    assert sent.snorq_message_id == 1
    assert delivered.snorq_message_id is None


def test_callback_data_that_snorq_did_not_write_names_no_message():
    body = payload("whatsapp", "status_sent")
    body["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = "crm:77"
    [status] = parse(body)
    assert status.snorq_message_id is None


def test_a_failed_status_carries_snorqs_error_code_and_whatsapps_title():
    [failed] = parse("status_failed")
    assert failed.status == MessageStatus.FAILED
    assert failed.error_code == ErrorCode.INVALID_RECIPIENT
    assert failed.error_message == "WhatsApp error 131026: Message undeliverable"


def test_a_failed_status_outside_the_window_says_so():
    body = payload("whatsapp", "status_failed")
    error = body["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]
    error.update(code=131047, title="Re-engagement message")
    [failed] = parse(body)
    assert failed.error_code == ErrorCode.OUTSIDE_WINDOW


def test_a_played_voice_note_counts_as_read_and_an_unknown_status_is_skipped():
    body = payload("whatsapp", "status_read")
    statuses = body["entry"][0]["changes"][0]["value"]["statuses"]
    statuses.append({**statuses[0], "status": "played"})
    statuses.append({**statuses[0], "status": "deleted"})
    assert [event.status for event in parse(body)] == [MessageStatus.READ, MessageStatus.READ]


def test_errors_of_the_whole_change_become_platform_notices():
    assert parse("errors") == [
        PlatformNotice(account_id=PHONE_NUMBER_ID, code="131000", message="Something went wrong")
    ]


def test_a_bare_interactive_message_meta_could_not_render_is_kept_as_unsupported():
    body = payload("whatsapp", "interactive_button_reply")
    value = body["entry"][0]["changes"][0]["value"]
    del value["messages"][0]["interactive"]
    value["errors"] = [{"code": 131000, "title": "Something went wrong"}]
    message, notice = parse(body)
    assert message.content_type == ContentType.UNSUPPORTED
    assert notice.code == "131000"


def test_every_entry_change_message_and_status_of_a_batch_is_read_in_order():
    events = parse("batch")
    assert [(type(e).__name__, e.external_id) for e in events] == [
        ("MessageEvent", "wamid.BATCH1"),
        ("MessageEvent", "wamid.BATCH2"),
        ("StatusEvent", "wamid.OUT1"),
        ("StatusEvent", "wamid.OUT2"),
        ("MessageEvent", "wamid.BATCH3"),
        ("MessageEvent", "wamid.BATCH4"),
        ("StatusEvent", "wamid.OUT3"),
    ]
    assert {e.contact.display_name for e in events if isinstance(e, MessageEvent)} == {
        "Zoë Ångström",
        "Amina Diallo",
    }


def test_changes_of_other_fields_carry_no_events():
    body = payload("whatsapp", "text")
    body["entry"][0]["changes"].append(
        {
            "field": "message_template_status_update",
            "value": {"event": "APPROVED", "message_template_id": 1, "reason": "NONE"},
        }
    )
    body["entry"][0]["changes"][0]["field"] = "account_update"
    assert parse(body) == []


def test_the_escaped_bytes_meta_sends_read_as_the_original_text():
    body = meta_body(payload("whatsapp", "text"))
    assert b"\\ud83d\\udc4b" in body and b"\\/" in body
    [message] = parse_webhook(body)
    assert "👋" in message.content and "https://example.com/o/42" in message.content


# -- bodies that are not what WhatsApp documents ---------------------------------------


def _value(body: dict) -> dict:
    return body["entry"][0]["changes"][0]["value"]


def _without_sender(body: dict) -> None:
    del first_message(body)["from"], first_message(body)["from_user_id"], _value(body)["contacts"]


SPOILED = {
    "another object": lambda b: b.update(object="page"),
    "no entries": lambda b: b.pop("entry"),
    "entries not a list": lambda b: b.update(entry={"id": "1"}),
    "changes null": lambda b: b["entry"][0].update(changes=None),
    "no value": lambda b: b["entry"][0]["changes"][0].pop("value"),
    "no metadata": lambda b: _value(b).pop("metadata"),
    "empty phone-number id": lambda b: _value(b)["metadata"].update(phone_number_id=""),
    "message not an object": lambda b: _value(b).update(messages=[["not", "an", "object"]]),
    "message without id": lambda b: first_message(b).pop("id"),
    "message id too long": lambda b: first_message(b).update(id="wamid." + "x" * 300),
    "timestamp not a number": lambda b: first_message(b).update(timestamp="yesterday"),
    "timestamp out of range": lambda b: first_message(b).update(timestamp="9" * 20),
    "type not a string": lambda b: first_message(b).update(type=7),
    "text body not a string": lambda b: first_message(b)["text"].update(body=["Hé 👋"]),
    "text without its body": lambda b: first_message(b).pop("text"),
    "no sender at all": _without_sender,
    "sender not a phone number": lambda b: first_message(b).update(
        **{"from": "1" * 40, "from_user_id": None}
    ),
}


@pytest.mark.parametrize("spoil", SPOILED.values(), ids=SPOILED.keys())
def test_a_body_that_is_not_a_documented_payload_is_a_parse_error(spoil):
    body = payload("whatsapp", "text")
    spoil(body)
    with pytest.raises(ParseError):
        parse(body)


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe{}", b"[" * 5000]
)
def test_a_body_that_is_not_a_json_object_is_a_parse_error(body):
    with pytest.raises(ParseError):
        parse_webhook(body)


def test_a_parse_error_names_where_and_never_quotes_the_customer():
    body = payload("whatsapp", "text")
    first_message(body)["text"]["body"] = {"secret": "Mon code est 4242"}
    with pytest.raises(ParseError) as raised:
        parse(body)
    assert (
        str(raised.value) == "body.entry[0].changes[0].value.messages[0].text.body must be a string"
    )


@pytest.mark.parametrize(
    ("escaped", "stored"),
    [
        (b"\\u0000", ""),
        (b"\\ud800", "?"),
        (b"\\udc00", "?"),
        (b"\\u0000\\udbff\\u0000", "?"),
        (b"\\ud83d\\udc4d", "👍"),
    ],
    ids=["NUL", "high half of a pair", "low half of a pair", "mixed", "a whole pair"],
)
def test_what_no_database_column_holds_is_cleaned_from_the_text(escaped, stored):
    body = meta_body(payload("whatsapp", "text")).replace(b"H\\u00e9", b"H" + escaped + b"\\u00e9")
    [message] = parse_webhook(body)
    assert message.content.startswith(f"H{stored}é 👋")
    assert message.payload["text"]["body"] == message.content


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["text", "image", "batch", "status_failed", "contacts", "system"]).flatmap(
        lambda event: mutations(payload("whatsapp", event))
    )
)
def test_any_change_to_a_payload_parses_or_is_a_parse_error(body):
    try:
        events = parse(body)
    except ParseError:
        return
    assert isinstance(events, list)
