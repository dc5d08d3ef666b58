"""Facebook Messenger (Send API on a Page): webhooks, sends, quick replies, typing.

Protocol facts: ../shared/PLATFORMS.md, section 3.
"""

from __future__ import annotations

from typing import ClassVar

from app.platforms.meta import MetaPlatform


class Facebook(MetaPlatform):
    name: ClassVar[str] = "facebook"
    max_text_length: ClassVar[int] = 2000
    burst_limit: ClassVar[tuple[int, int]] = (300, 1)
