"""Messaging windows: how long after a customer's last message free text may be sent.

WhatsApp allows 24 h (then only templates), Messenger 24 h (7 days with the
HUMAN_AGENT tag, when the app has it), TikTok 48 h. Each inbound message opens the
window again; outbound messages never do. ../shared/PLATFORMS.md
"""

from __future__ import annotations

import datetime

WINDOW_HOURS = {"whatsapp": 24, "facebook": 24, "tiktok": 48}
HUMAN_AGENT_HOURS = 7 * 24


def window_closes_at(
    platform: str, last_inbound_at: datetime.datetime | None, *, human_agent: bool = False
) -> datetime.datetime | None:
    """When free-text replies stop being allowed (None: the customer never wrote)."""
    if last_inbound_at is None:
        return None
    hours = WINDOW_HOURS[platform]
    if platform == "facebook" and human_agent:
        hours = HUMAN_AGENT_HOURS
    return last_inbound_at + datetime.timedelta(hours=hours)


def window_open(
    platform: str,
    last_inbound_at: datetime.datetime | None,
    now: datetime.datetime,
    *,
    human_agent: bool = False,
) -> bool:
    closes_at = window_closes_at(platform, last_inbound_at, human_agent=human_agent)
    return closes_at is not None and now < closes_at


def needs_human_agent_tag(
    last_inbound_at: datetime.datetime | None, now: datetime.datetime
) -> bool:
    """True when a Messenger reply is past 24 h and must carry the HUMAN_AGENT tag."""
    return not window_open("facebook", last_inbound_at, now)
