"""TikTok API for Business, Business Messaging: webhooks, sends, tokens.

Protocol facts: ../shared/PLATFORMS.md, section 4B. Webhooks carry
``TikTok-Signature: t=<unix seconds>,s=<hex>``, an HMAC-SHA256 of ``"<t>." + body``;
there is no GET handshake.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from app.platforms.base import Platform, hmac_sha256_hex, same_secret

SIGNATURE_HEADER = "TikTok-Signature"


def parse_signature_header(value: str) -> tuple[int, str] | None:
    """``(timestamp, signature)`` from a ``t=…,s=…`` header, or None if malformed."""
    fields = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
    timestamp, signature = fields.get("t", "").strip(), fields.get("s", "").strip()
    if not timestamp.isdigit() or not signature:
        return None
    return int(timestamp), signature


class TikTok(Platform):
    name: ClassVar[str] = "tiktok"
    max_text_length: ClassVar[int] = 6000
    burst_limit: ClassVar[tuple[int, int]] = (600, 60)

    def verify_signature(self, body: bytes, headers: Mapping[str, str], now: float) -> bool:
        secret = self.webhook_secret()
        parsed = parse_signature_header(headers.get(SIGNATURE_HEADER, ""))
        if not secret or parsed is None:
            return False
        timestamp, received = parsed
        if abs(now - timestamp) > self.settings.tiktok_signature_tolerance:
            return False
        expected = hmac_sha256_hex(secret, str(timestamp).encode() + b"." + body)
        return same_secret(expected, received)
