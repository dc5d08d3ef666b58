"""What WhatsApp and Messenger share: Meta's webhook signature and subscription handshake.

Meta signs the raw bytes it sends (already ``\\uXXXX``-escaped, with ``\\/``), so the
HMAC is computed over the body exactly as received, never over re-encoded JSON.
https://developers.facebook.com/docs/graph-api/webhooks/getting-started
"""

from __future__ import annotations

from collections.abc import Mapping

from app.platforms.base import Platform, hmac_sha256_hex, same_secret

SIGNATURE_HEADER = "X-Hub-Signature-256"


class MetaPlatform(Platform):
    """A platform on Meta's Graph API (WhatsApp Cloud API, Messenger)."""

    def verify_signature(self, body: bytes, headers: Mapping[str, str], now: float) -> bool:
        secret = self.webhook_secret()
        received = headers.get(SIGNATURE_HEADER)
        if not secret or not received:
            return False
        return same_secret("sha256=" + hmac_sha256_hex(secret, body), received)

    def verify_subscription(self, args: Mapping[str, str]) -> str | None:
        verify_token = self.settings.secrets_for(self.name).verify_token
        if not verify_token or args.get("hub.mode") != "subscribe":
            return None
        if not same_secret(verify_token, args.get("hub.verify_token", "")):
            return None
        return args.get("hub.challenge", "")
