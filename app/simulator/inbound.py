"""A customer's message as its platform's webhook: what ``snorq simulate`` posts.

The same payloads the simulator's fake customer sends, built and signed without
a simulator running, so they can be posted to any SNORQ that has the secret.
"""

from __future__ import annotations

import time

import requests

from app.simulator.accounts import Account
from app.simulator.customer import Customer
from app.simulator.delivery import POST_TIMEOUT, signed, webhook_url
from app.simulator.ids import conversation_id, messenger_mid, tiktok_message_id, wamid
from app.simulator.media import Media
from app.simulator.webhooks import messenger, tiktok, whatsapp


def message_webhook(
    account: Account,
    who: Customer,
    *,
    text: str = "",
    picture: Media | None = None,
    picture_url: str | None = None,
) -> tuple[str, dict]:
    """A new message id, and the webhook payload carrying the customer's message.

    ``picture`` is the media a WhatsApp or TikTok picture refers to; Messenger
    gives a picture's ``picture_url`` instead.
    """
    now = time.time()
    if account.platform == "whatsapp":
        message_id = wamid()
        return message_id, whatsapp.inbound_payload(
            account, who, message_id, now, text=text, media=picture
        )
    if account.platform == "facebook":
        message_id = messenger_mid()
        return message_id, messenger.inbound_payload(
            account, who, message_id, now, text=text, image_url=picture_url
        )
    message_id = tiktok_message_id()
    conversation = conversation_id(account.account_id, who.external_id)
    return message_id, tiktok.inbound_payload(
        account, who, conversation, message_id, now, text=text, media=picture
    )


def post(snorq_url: str, platform: str, payload: dict, secret: str) -> requests.Response:
    """Post ``payload`` to SNORQ's webhook for ``platform``, signed with ``secret``.

    Raises:
      requests.RequestException: SNORQ could not be reached.
    """
    body, headers = signed(platform, payload, secret, time.time())
    return requests.post(
        webhook_url(snorq_url, platform), data=body, headers=headers, timeout=POST_TIMEOUT
    )
