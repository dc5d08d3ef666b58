"""The ids the simulated platforms hand out, shaped like the real ones."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

#: A few dial codes and the region a WhatsApp BSUID starts with for them.
_REGIONS = {"1": "US", "44": "GB", "49": "DE", "33": "FR", "34": "ES", "55": "BR", "91": "IN"}


def numeric_id(seed: str, digits: int = 15) -> str:
    """A stable all-digit id for ``seed`` (Graph ids are numbers written as strings)."""
    number = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return str(10 ** (digits - 1) + number % (9 * 10 ** (digits - 1)))


def random_numeric(digits: int = 15) -> str:
    return str(10 ** (digits - 1) + secrets.randbelow(9 * 10 ** (digits - 1)))


def wamid() -> str:
    """A WhatsApp message id: ``wamid.`` and base64 (up to 128 characters in all)."""
    return "wamid." + base64.b64encode(b"HBgL" + secrets.token_bytes(30)).decode()


def messenger_mid() -> str:
    return "m_" + secrets.token_urlsafe(64)


def tiktok_message_id() -> str:
    return secrets.token_hex(16)


def bsuid(account_id: str, phone: str) -> str:
    """The business-scoped user id WhatsApp gives the owner of ``phone`` for this account."""
    digits = "".join(c for c in phone if c.isdigit())
    region = next((r for code, r in _REGIONS.items() if digits.startswith(code)), "US")
    return f"{region}.{numeric_id(f'{account_id}:{digits}', 20)}"


def is_bsuid(value: str) -> bool:
    region, _, number = value.partition(".")
    return len(region) == 2 and region.isalpha() and region.isupper() and number.isdigit()


def conversation_id(business_id: str, user_id: str) -> str:
    """A TikTok conversation id: opaque to SNORQ, readable by the simulator."""
    return base64.urlsafe_b64encode(f"{business_id}:{user_id}".encode()).decode().rstrip("=")


def parse_conversation_id(value: str) -> tuple[str, str] | None:
    """``(business_id, user_id)`` of a conversation this simulator opened, else None."""
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    business_id, colon, user_id = decoded.partition(":")
    return (business_id, user_id) if colon and business_id and user_id else None
