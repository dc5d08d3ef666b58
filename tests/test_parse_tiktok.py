"""TikTok Business Messaging webhooks parsed into SNORQ's events (PLATFORMS.md, section 4B)."""

import datetime
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.models import ContentType, Direction, MessageStatus
from app.platforms.errors import ParseError
from app.platforms.events import (
    AuthorizationRevoked,
    ContactRef,
    MediaRef,
    MessageEvent,
    WatermarkEvent,
)
from app.platforms.tiktok import parse_webhook
from tests.payloads import mutations, payload
from tests.support import tiktok_body

BUSINESS_ID = "7312345678901"
USER_ID = "-000Xt0tEaTLpMtcvFrk0Gmn1SRbNUd3aA3ZP"
CONVERSATION_ID = "0:1:7312345678901:7299887766554433221"
MARIANA = ContactRef(USER_ID, display_name="mariana.souza", username="mariana.souza")


def parse(event_or_payload) -> list:
    if isinstance(event_or_payload, str):
        event_or_payload = payload("tiktok", event_or_payload)
    return parse_webhook(tiktok_body(event_or_payload))


def content(body: dict) -> dict:
    return json.loads(body["content"])


def with_content(body: dict, **changes) -> dict:
    body["content"] = json.dumps({**content(body), **changes}, ensure_ascii=False)
    return body


@pytest.mark.parametrize(
    ("event", "content_type", "text"),
    [
        ("im_receive_msg", ContentType.TEXT, "Olá! Ainda tem o tamanho M? ありがとう 🎉"),
        ("im_receive_msg_image", ContentType.IMAGE, "[Image]"),
        (
            "im_receive_msg_share_post",
            ContentType.SHARE,
            "[Shared post: https://www.tiktok.com/embed/v2/7401234567890123456]",
        ),
        ("im_receive_msg_sticker", ContentType.STICKER, "[Sticker]"),
    ],
)
def test_each_received_message_reads_as_its_content_type_and_preview(event, content_type, text):
    [message] = parse(event)
    original = content(payload("tiktok", event))
    assert message == MessageEvent(
        account_id=BUSINESS_ID,
        contact=MARIANA,
        external_id=original["message_id"],
        direction=Direction.INBOUND,
        content_type=content_type,
        content=text,
        timestamp=datetime.datetime(2026, 1, 1, 0, 0, 0, 123000),
        payload=original,
        thread_id=CONVERSATION_ID,
        media=message.media,
    )


def test_an_image_names_the_media_to_fetch():
    [message] = parse("im_receive_msg_image")
    assert message.media == (MediaRef(kind="image", media_id="v09044g40000cs1a2b3c4d5e6f7g8h9i"),)


def test_a_message_type_tiktok_adds_later_is_kept_as_unsupported():
    body = with_content(payload("tiktok", "im_receive_msg"), type="video_share")
    [message] = parse(body)
    assert (message.content_type, message.content) == (
        ContentType.UNSUPPORTED,
        "[Unsupported message]",
    )


def test_a_sent_message_is_an_outbound_echo_to_the_customer():
    [echo] = parse("im_send_msg")
    assert echo.direction == Direction.OUTBOUND
    assert echo.contact == MARIANA
    assert echo.external_id == "7412345678901234600"
    assert echo.thread_id == CONVERSATION_ID
    assert echo.payload["referenced_message_info"] == {
        "referenced_message_id": "7412345678901234567"
    }


def test_a_read_by_the_customer_is_a_read_watermark():
    assert parse("im_mark_read_msg") == [
        WatermarkEvent(
            BUSINESS_ID, USER_ID, MessageStatus.READ, datetime.datetime(2026, 1, 1, 0, 1, 30)
        )
    ]


def test_a_read_by_the_business_itself_says_nothing_about_the_customer():
    body = with_content(
        payload("tiktok", "im_mark_read_msg"),
        from_user={"id": BUSINESS_ID},
        to_user={"id": USER_ID},
    )
    assert parse(body) == []


def test_a_removed_authorization_says_why():
    assert parse("authorization_removed") == [
        AuthorizationRevoked(BUSINESS_ID, "the user disconnected SNORQ in TikTok")
    ]


def test_other_events_carry_nothing_to_show():
    body = {**payload("tiktok", "im_receive_msg"), "event": "im_referral_msg"}
    assert parse(body) == []


def test_the_content_string_may_itself_hold_escaped_unicode():
    body = payload("tiktok", "im_receive_msg")
    body["content"] = json.dumps(content(body))
    assert "\\u3042" in body["content"]
    [message] = parse(body)
    assert message.content == "Olá! Ainda tem o tamanho M? ありがとう 🎉"


# -- bodies that are not what TikTok documents ---------------------------------------


SPOILED = {
    "no event": lambda b: b.pop("event"),
    "no business id": lambda b: b.pop("user_openid"),
    "content an object": lambda b: b.update(content=content(b)),
    "content not JSON": lambda b: b.update(content="{conversation_id: 1"),
    "content a list": lambda b: b.update(content="[]"),
    "no message id": lambda b: b.update(content=json.dumps({**content(b), "message_id": None})),
    "timestamp in text": lambda b: with_content(b, timestamp="1767225600123"),
    "no sender": lambda b: with_content(b, from_user=None),
    "text without body": lambda b: with_content(b, text={}),
}


@pytest.mark.parametrize("spoil", SPOILED.values(), ids=SPOILED.keys())
def test_a_body_that_is_not_a_documented_payload_is_a_parse_error(spoil):
    body = payload("tiktok", "im_receive_msg")
    spoil(body)
    with pytest.raises(ParseError):
        parse(body)


def test_a_read_without_a_reader_is_a_parse_error():
    body = with_content(payload("tiktok", "im_mark_read_msg"), from_user="mariana")
    with pytest.raises(ParseError):
        parse(body)


def _mutated_envelopes(event: str):
    """Mutations of the envelope and, with ``content`` decoded, of what it carries."""
    body = payload("tiktok", event)
    decoded = {**body, "content": content(body)}

    def encode(changed):
        if isinstance(changed.get("content"), dict | list):
            changed["content"] = json.dumps(changed["content"], ensure_ascii=False)
        return changed

    return mutations(body) | mutations(decoded).map(encode)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        ["im_receive_msg", "im_receive_msg_image", "im_send_msg", "im_mark_read_msg"]
    ).flatmap(_mutated_envelopes)
)
def test_any_change_to_a_payload_parses_or_is_a_parse_error(body):
    try:
        events = parse(body)
    except ParseError:
        return
    assert isinstance(events, list)
