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
    media: Media | None = None,
    media_url: str | None = None,
) -> tuple[str, dict]:
    """A new message id, and the webhook payload carrying the customer's message.

    ``media`` is the file the message carries: WhatsApp and TikTok refer to it
    by id, Messenger gives its ``media_url`` instead.
    """
    now = time.time()
    if account.platform == "whatsapp":
        message_id = wamid()
        return message_id, whatsapp.inbound_payload(
            account, who, message_id, now, text=text, media=media
        )
    if account.platform == "facebook":
        message_id = messenger_mid()
        kind = media.kind if media is not None else "image"
        return message_id, messenger.inbound_payload(
            account, who, message_id, now, text=text, file_url=media_url, kind=kind
        )
    message_id = tiktok_message_id()
    conversation = conversation_id(account.account_id, who.external_id)
    return message_id, tiktok.inbound_payload(
        account, who, conversation, message_id, now, text=text, media=media
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
