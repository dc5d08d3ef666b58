"""Each platform's whole loop, through the deployed processes and the simulated platform.

A customer writes (the simulator posts the signed webhook) → the worker stores it →
staff see it through the JSON API → staff reply → the worker sends it → the
customer's phone acknowledges it → the API shows SENT, DELIVERED, READ, and the
organization's live events tell the same story in order.
"""

from __future__ import annotations

import datetime
import secrets

import pytest

from tests.e2e.deployment import ACCOUNTS, CUSTOMERS, PLATFORMS, Deployment

pytestmark = pytest.mark.e2e

#: Forward order of a reply's status.
RANK = {"PENDING": 0, "SENT": 1, "DELIVERED": 2, "READ": 3}
STAMPS = {"SENT": "sent_at", "DELIVERED": "delivered_at", "READ": "read_at"}
#: The contact each platform's webhook identifies. WhatsApp's names the customer and
#: SNORQ keys the contact on the BSUID, the number kept beside it; Messenger's gives
#: the PSID alone; TikTok's gives the user id and handle. The names of the last two
#: come from the profile worker (User Profile API, TikTok participants).
CONTACTS = {
    "whatsapp": {"phone": CUSTOMERS["whatsapp"][0]},
    "facebook": {"external_id": CUSTOMERS["facebook"][0]},
    "tiktok": {"external_id": CUSTOMERS["tiktok"][0], "username": "chloe.5678"},
}


def moment(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.removesuffix("Z"))


def reached(deployment: Deployment, conversation_id: int, message_id: int, status: str):
    """The message once its status is ``status`` or later; FAILED ends the wait at once."""
    message = deployment.message(conversation_id, message_id)
    assert message["status"] != "FAILED", message
    return message if RANK[message["status"]] >= RANK[status] else None


def conversation_events(deployment: Deployment, conversation_id: int) -> list[tuple]:
    """``(type, message id, status)`` of each live event about the conversation's messages."""
    events = deployment.events()
    sequence = [event["seq"] for event in events]
    assert sequence == sorted(sequence)
    return [
        (event["type"], event["data"]["message"]["id"], event["data"]["message"]["status"])
        for event in events
        if event["data"].get("message", {}).get("conversation_id") == conversation_id
    ]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_customer_message_and_its_reply_go_round_the_whole_loop(deployment, platform):
    text = f"¿Tienen la chaqueta en talla M? ({platform} {secrets.token_hex(4)})"
    answer = f"Sí, nos queda una: se la guardamos ({platform} {secrets.token_hex(4)})"
    deployment.forbid(text, answer)
    connection_id = deployment.connections[platform]

    external_id = deployment.customer_writes(platform, ACCOUNTS[platform], text)
    conversation = deployment.wait(
        lambda: deployment.conversation_on(connection_id), "the conversation is listed"
    )
    assert conversation["platform"] == platform
    contact = conversation["contact"]
    assert {key: contact[key] for key in CONTACTS[platform]} == CONTACTS[platform]
    assert conversation["can_reply"]
    name = CUSTOMERS[platform][1]
    deployment.wait(
        lambda: deployment.conversation_on(connection_id)["contact"]["display_name"] == name,
        f"the contact is named {name}",
    )
    [inbound] = deployment.messages(conversation["id"])
    assert (inbound["direction"], inbound["content"]) == ("INBOUND", text)
    assert inbound["external_id"] == external_id

    reply = deployment.reply(conversation["id"], answer)
    assert (reply["status"], reply["content"]) == ("PENDING", answer)
    for status in ("SENT", "DELIVERED", "READ"):
        sent = deployment.wait(
            lambda status=status: reached(deployment, conversation["id"], reply["id"], status),
            f"the reply is {status}",
        )
        assert sent[STAMPS[status]] is not None, sent
    # Ordered to the second: WhatsApp stamps its statuses in whole seconds, while
    # SNORQ stamps SENT with its own clock when the platform accepts the send.
    stamps = [moment(sent[STAMPS[status]]).replace(microsecond=0) for status in STAMPS]
    assert stamps == sorted(stamps), sent
    assert sent["external_id"]

    # The platform's echo of the reply is the reply, not a second message.
    listed = deployment.messages(conversation["id"])
    assert [m["id"] for m in listed] == [inbound["id"], reply["id"]]
    sends = [
        call
        for call in deployment.platform_calls(platform, ACCOUNTS[platform])
        if call["endpoint"] == "send"
    ]
    assert [call["status"] for call in sends] == [200]

    events = conversation_events(deployment, conversation["id"])
    assert events[0] == ("new:message", inbound["id"], "RECEIVED"), events
    about_reply = [
        (kind, status) for kind, message_id, status in events if message_id == reply["id"]
    ]
    assert about_reply[:2] == [("new:message", "PENDING"), ("message:sent", "SENT")], events
    # Then one message:status per receipt that moved it forward (TikTok has no
    # delivery receipt: its read receipt moves it from SENT to READ).
    receipts = about_reply[2:]
    ranks = [RANK[status] for _, status in receipts]
    assert {kind for kind, _ in receipts} == {"message:status"}, events
    assert ranks == sorted(set(ranks)) and receipts[-1][1] == "READ", events
