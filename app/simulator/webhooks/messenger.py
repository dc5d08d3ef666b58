"""Messenger webhooks: a Page's ``messaging`` events — messages, echoes, deliveries, reads.

Times are epoch milliseconds. A delivery or read ``watermark`` covers everything
the Page sent up to it. ../shared/PLATFORMS.md, section 3.
"""

from __future__ import annotations

from app.simulator.accounts import Account
from app.simulator.customer import Customer


def _ms(at: float) -> int:
    return int(at * 1000)


def envelope(page: Account, event: dict, at: float) -> dict:
    return {
        "object": "page",
        "entry": [{"id": page.account_id, "time": _ms(at), "messaging": [event]}],
    }


def _app_id(value: str) -> int | str:
    # Meta writes the app id as a number.
    return int(value) if value.isdigit() else value


def echo_payload(
    app_id: str, page: Account, psid: str, mid: str, message: dict, sent_at: float, at: float
) -> dict:
    """The echo of the Page's own message: sender is the Page, recipient the customer."""
    event = {
        "sender": {"id": page.account_id},
        "recipient": {"id": psid},
        "timestamp": _ms(sent_at),
        "message": {"is_echo": True, "app_id": _app_id(app_id), "mid": mid, **message},
    }
    return envelope(page, event, at)


def delivery_payload(page: Account, psid: str, mid: str, at: float) -> dict:
    """The customer's phone got everything up to now (``watermark``), this ``mid`` included."""
    event = {
        "sender": {"id": psid},
        "recipient": {"id": page.account_id},
        "delivery": {"mids": [mid], "watermark": _ms(at)},
    }
    return envelope(page, event, at)


def read_payload(page: Account, psid: str, at: float) -> dict:
    """The customer read everything the Page sent up to now (``watermark``)."""
    event = {
        "sender": {"id": psid},
        "recipient": {"id": page.account_id},
        "timestamp": _ms(at),
        "read": {"watermark": _ms(at)},
    }
    return envelope(page, event, at)


def inbound_payload(
    page: Account,
    who: Customer,
    mid: str,
    at: float,
    *,
    text: str = "",
    file_url: str | None = None,
    kind: str = "image",
) -> dict:
    """A customer's message to the Page: text, or a file (``kind``: image, audio, document).

    Messenger sends a file and words as two messages, so ``text`` is left out
    of a file's message.
    """
    message: dict = {"mid": mid}
    if file_url is not None:
        kind = "file" if kind == "document" else kind
        message["attachments"] = [{"type": kind, "payload": {"url": file_url}}]
    else:
        message["text"] = text
    event = {
        "sender": {"id": who.external_id},
        "recipient": {"id": page.account_id},
        "timestamp": _ms(at),
        "message": message,
    }
    return envelope(page, event, at)
