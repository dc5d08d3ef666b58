"""The platform adapters, by the name used in URLs, the database and the CLI."""

from __future__ import annotations

from app.platforms.base import Platform
from app.platforms.facebook import Facebook
from app.platforms.tiktok import TikTok
from app.platforms.whatsapp import WhatsApp

PLATFORMS: dict[str, Platform] = {
    "whatsapp": WhatsApp(),
    "facebook": Facebook(),
    "tiktok": TikTok(),
}


def get_platform(name: str) -> Platform:
    """The adapter for ``name``; KeyError for a platform SNORQ does not know."""
    return PLATFORMS[name]
