"""The one Redis client of a process: the real server from ``REDIS_URL``, else fakeredis.

The embedded mode keeps a single in-process fake server, so the queue, the rate
limits and the live events all share it exactly as they would share Redis.
"""

from __future__ import annotations

import functools

import redis

from app.config import get_settings


@functools.cache
def get_redis() -> redis.Redis:
    """The process-wide Redis client (bytes in, bytes out)."""
    url = get_settings().redis_url
    if url is None:
        return _in_process_redis()
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )


def _in_process_redis() -> redis.Redis:
    # Imported here: fakeredis and the Lua runtime it loads are the embedded mode's
    # alone (a few MiB in every process on a real Redis otherwise).
    import fakeredis

    return fakeredis.FakeRedis(server=fakeredis.FakeServer())
