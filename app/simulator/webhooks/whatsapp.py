"""WhatsApp Cloud API webhooks: a number's ``messages`` field, statuses and messages.

Statuses (``sent``, ``delivered``, ``read``) carry the send's
``biz_opaque_callback_data`` and, as 2026 payloads do, a ``contacts`` entry with
the customer's BSUID. ../shared/PLATFORMS.md, section 2.
"""

from __future__ import annotations

from app.simulator.accounts import Account
from app.simulator.customer import Customer
from app.simulator.ids import bsuid, is_bsuid
from app.simulator.media import Media


def envelope(account: Account, value: dict) -> dict:
    """A ``messages`` webhook of the WhatsApp Business Account holding the number."""
    metadata = {
        "display_phone_number": account.display_phone_number,
        "phone_number_id": account.account_id,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": account.waba_id,
                "changes": [
                    {
                        "value": {"messaging_product": "whatsapp", "metadata": metadata, **value},
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def status_payload(
    account: Account,
    recipient: tuple[str | None, str],
    message_id: str,
    status: str,
    kind: str,
    callback: str | None,
    at: float,
) -> dict:
    """A status webhook (``sent``, ``delivered``, ``read``) for one message.

    ``recipient`` is the customer's ``(wa_id, user_id)``; ``wa_id`` is None when
    the message went to a BSUID.
    """
    wa_id, user_id = recipient
    template = kind == "template"
    entry: dict = {
        "id": message_id,
        "status": status,
        "timestamp": str(int(at)),
        "recipient_id": wa_id or user_id,
        "pricing": {
            "billable": template,
            "pricing_model": "PMP",
            "category": "utility" if template else "service",
            "type": "regular" if template else "free_customer_service",
        },
    }
    if callback is not None:
        entry["biz_opaque_callback_data"] = callback
    contact = {"user_id": user_id}
    if wa_id is not None:
        contact["wa_id"] = wa_id
    return envelope(account, {"contacts": [contact], "statuses": [entry]})


def inbound_payload(
    account: Account,
    who: Customer,
    message_id: str,
    at: float,
    *,
    text: str = "",
    media: Media | None = None,
) -> dict:
    """A customer's message: text, or a file (``text`` is a picture's or document's caption)."""
    if is_bsuid(who.external_id):
        user_id, phone = who.external_id, None
    else:
        user_id, phone = bsuid(account.account_id, who.external_id), who.external_id
    contact: dict = {"profile": {"name": who.name}, "user_id": user_id}
    message: dict = {"from_user_id": user_id, "id": message_id, "timestamp": str(int(at))}
    if phone is not None:
        contact["wa_id"] = phone
        message["from"] = phone
    if media is None:
        message.update(type="text", text={"body": text})
    else:
        file = {"id": media.media_id, "mime_type": media.mime_type, "sha256": media.sha256_base64}
        if media.kind == "document":
            file["filename"] = media.filename
        if text:
            file["caption"] = text
        message.update({"type": media.kind, media.kind: file})
    return envelope(account, {"contacts": [contact], "messages": [message]})
