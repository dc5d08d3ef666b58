"""TikTok Business Messaging webhooks: ``im_receive_msg``, ``im_send_msg``, ``im_mark_read_msg``.

The envelope names the business (``user_openid``); ``content`` is itself a JSON
string, with times in epoch milliseconds. ../shared/PLATFORMS.md, section 4B.
"""

from __future__ import annotations

import json

from app.simulator.accounts import Account
from app.simulator.customer import Customer
from app.simulator.media import Media


def username(account: Account) -> str:
    """The business account's handle, as messages name it."""
    return "".join(c for c in account.name.lower() if c.isalnum() or c == "_") or account.account_id


def envelope(account: Account, event: str, content: dict, at: float) -> dict:
    """A Business Messaging webhook: ``content`` travels as a JSON string."""
    return {
        "event": event,
        "user_openid": account.account_id,
        "create_time": int(at),
        "content": json.dumps(content, ensure_ascii=False),
    }


def _between(sender: tuple[str, str], receiver: tuple[str, str]) -> dict:
    return {
        "from": sender[1],
        "from_user": {"id": sender[0]},
        "to": receiver[1],
        "to_user": {"id": receiver[0]},
    }


def sent_payload(
    account: Account,
    who: Customer,
    conversation_id: str,
    message_id: str,
    content: dict,
    sent_at: float,
    at: float,
) -> dict:
    """``im_send_msg``: the echo of a message the business sent."""
    business, person = (account.account_id, username(account)), (who.external_id, who.username)
    body = {
        "conversation_id": conversation_id,
        "message_id": message_id,
        "timestamp": int(sent_at * 1000),
        **content,
        **_between(business, person),
    }
    return envelope(account, "im_send_msg", body, at)


def read_payload(account: Account, who: Customer, conversation_id: str, at: float) -> dict:
    """``im_mark_read_msg``: the customer read the conversation up to now."""
    business, person = (account.account_id, username(account)), (who.external_id, who.username)
    body = {
        "conversation_id": conversation_id,
        "read": {"last_read_timestamp": int(at * 1000)},
        **_between(person, business),
    }
    return envelope(account, "im_mark_read_msg", body, at)


def inbound_payload(
    account: Account,
    who: Customer,
    conversation_id: str,
    message_id: str,
    at: float,
    *,
    text: str = "",
    media: Media | None = None,
) -> dict:
    """``im_receive_msg``: a customer's text or picture."""
    business, person = (account.account_id, username(account)), (who.external_id, who.username)
    if media is None:
        content: dict = {"type": "text", "text": {"body": text}}
    else:
        content = {"type": "image", "image": {"media_id": media.media_id}}
    body = {
        "conversation_id": conversation_id,
        "message_id": message_id,
        "timestamp": int(at * 1000),
        **content,
        **_between(person, business),
    }
    return envelope(account, "im_receive_msg", body, at)
