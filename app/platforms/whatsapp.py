"""WhatsApp Business Cloud API: webhooks, sends, templates, read receipts, media.

Protocol facts: ../shared/PLATFORMS.md, section 2.
"""

from __future__ import annotations

from typing import ClassVar

from app.platforms.meta import MetaPlatform


class WhatsApp(MetaPlatform):
    name: ClassVar[str] = "whatsapp"
    max_text_length: ClassVar[int] = 4096
    burst_limit: ClassVar[tuple[int, int]] = (80, 1)
