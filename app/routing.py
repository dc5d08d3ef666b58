"""Which connection (and so which organization) a webhook's account id belongs to."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from app.models import PlatformConnection

#: Seconds a found connection is reused without asking the database again.
TTL_SECONDS = 30.0
#: Seconds an unknown account stays unknown (short: a connection may be added any time).
UNKNOWN_TTL_SECONDS = 2.0


@dataclass(frozen=True)
class Route:
    connection_id: int
    organization_id: int
    platform: str


_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[float, Route | None]] = {}


def route(platform: str, account_id: str) -> Route | None:
    """The connection for ``account_id`` on ``platform``, or None if SNORQ has none."""
    key = (platform, account_id)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        found_at, found = cached
        if now - found_at < (TTL_SECONDS if found else UNKNOWN_TTL_SECONDS):
            return found
    row = (
        PlatformConnection.select(PlatformConnection.id, PlatformConnection.organization)
        .where(PlatformConnection.platform == platform, PlatformConnection.account_id == account_id)
        .tuples()
        .first()
    )
    found = None if row is None else Route(row[0], row[1], platform)
    with _lock:
        _cache[key] = (now, found)
    return found


def forget() -> None:
    """Drop every cached lookup (after connections change in this process)."""
    with _lock:
        _cache.clear()
