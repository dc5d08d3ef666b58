"""The one Redis client of a process: the real server from ``REDIS_URL``, else fakeredis.

The embedded mode keeps a single in-process fake server, so the queue, the rate
limits and the live events all share it exactly as they would share Redis.
"""

from __future__ import annotations

import functools

import fakeredis
import redis

from app.config import get_settings


@functools.cache
def _fake_server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@functools.cache
def get_redis() -> redis.Redis:
    """The process-wide Redis client (bytes in, bytes out)."""
    url = get_settings().redis_url
    if url is None:
        return fakeredis.FakeRedis(server=_fake_server())
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )
