"""Counters every process can bump and any process can read (kept in Redis)."""

from __future__ import annotations

from app.redis_client import get_redis

_KEY = "snorq:counters"


def count(name: str, amount: int = 1) -> None:
    get_redis().hincrby(_KEY, name, amount)


def counters() -> dict[str, int]:
    return {key.decode(): int(value) for key, value in get_redis().hgetall(_KEY).items()}
