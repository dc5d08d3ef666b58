"""The platforms' send APIs as the outbound tests fake them, and replies waiting to go out.

Answers are shaped like the real ones (PLATFORMS.md): the WhatsApp send response,
the Messenger Send API response, Graph's error object, TikTok's
``{code, message, request_id, data}`` envelope.
"""

from __future__ import annotations

import datetime
import json

import pytest

from app import messages
from app.db import utcnow
from app.models import Contact, Conversation, Message

GRAPH = "https://graph.facebook.test/v25.0"
TIKTOK = "https://business-api.tiktok.test/open_api/v1.3"
SEND_URLS = {
    "whatsapp": f"{GRAPH}/106540352242922/messages",
    "facebook": f"{GRAPH}/1234567890/messages",
    "tiktok": f"{TIKTOK}/business/message/send/",
}
CUSTOMERS = {
    "whatsapp": {"external_id": "US.13491208655302741918", "phone": "16505551234"},
    "facebook": {"external_id": "24012345678901234"},
    "tiktok": {"external_id": "7312000000000000001"},
}
TIKTOK_THREAD = "tt-conv-5f1c2a"


def whatsapp_sent(wamid: str = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"):
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": wamid}],
    }


def messenger_sent(
    mid: str = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP",
):
    return {"recipient_id": CUSTOMERS["facebook"]["external_id"], "message_id": mid}


def tiktok_answer(data: dict | None = None, code: int = 0, message: str = "OK") -> dict:
    return {"code": code, "message": message, "request_id": "2026081112000001", "data": data or {}}


def tiktok_sent(message_id: str = "7401234567890123456") -> dict:
    return tiktok_answer({"message": {"message_id": message_id}})


def graph_error(code: int, message: str, subcode: int | None = None, **extra) -> dict:
    error = {"message": message, "type": "OAuthException", "code": code, **extra}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AbCdEfGhIjKlMnOp"
    return {"error": error}


def conversation(
    org, connection, *, wrote_hours_ago: float | None = 1.0, **contact
) -> Conversation:
    """A conversation with the platform's usual customer, who last wrote that long ago."""
    fields = {**CUSTOMERS[connection.platform], **contact}
    customer = Contact.create(organization=org, platform=connection.platform, **fields)
    last_inbound = None
    if wrote_hours_ago is not None:
        last_inbound = utcnow() - datetime.timedelta(hours=wrote_hours_ago)
    return Conversation.create(
        organization=org,
        connection=connection,
        contact=customer,
        external_thread_id=TIKTOK_THREAD if connection.platform == "tiktok" else None,
        last_inbound_at=last_inbound,
    )


def reply(thread: Conversation, user, content: str = "Your order ships today 📦", **extras):
    """A staff reply stored PENDING, as the API stores it."""
    message, _ = messages.create_outbound(
        thread, user_id=user.id, content=content, options=extras or None
    )
    return message


def reload(message: Message) -> Message:
    return Message.get_by_id(message.id)


def sent_json(call) -> dict:
    return json.loads(call.request.body)


@pytest.fixture
def fast_retries(monkeypatch):
    """Retries after 10 ms, 20 ms, 40 ms… instead of 1 s, 2 s, 4 s…"""
    monkeypatch.setattr("workers.outbound.MIN_BACKOFF_MS", 10)
    monkeypatch.setattr("workers.outbound.MAX_BACKOFF_MS", 300)
