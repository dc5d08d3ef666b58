"""Rate limits on platform calls: a precise sliding log per connection, kept in Redis.

A limit is "at most N calls in any W seconds", checked against a log of the calls
actually made (a sorted set of timestamps), so no span of W seconds, wherever it
starts, ever holds more than N calls; a fixed-window counter lets up to 2N through
across a window boundary. Checking every limit of a connection and taking a token
from all of them happens in one Lua script, so workers on many machines never
overshoot together, and the clock is the Redis server's, so theirs need not agree.

A caller that must wait reserves the next free slot (kept in a second log), so waiters
come back one after the other, in order, instead of all at once to fight over each
token that frees up. When it comes back it takes a token only if the calls actually
made leave room, so a waiter that comes back late never squeezes calls closer together.

A reply takes a token from its connection's daily quota (``settings.daily_quotas``,
overridden by ``connection.daily_quota``) and from its burst limit (the adapter's
``burst_limit``, whose call count ``connection.burst_limit`` overrides). Read
receipts and typing indicators take a burst token only. A limit of 0 means none.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from dramatiq.rate_limits import RateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from app.config import get_settings
from app.models import PlatformConnection
from app.platforms import get_platform
from app.redis_client import get_redis

DAY_SECONDS = 24 * 3600
#: Each limit keeps the calls made and the slots reserved by waiters apart.
LOGS = ("made", "slots")
#: Milliseconds added to every window: a token is taken a moment before the request
#: leaves, and that moment varies with the load on the worker, so the platform could
#: otherwise see calls a little closer together than SNORQ counted them.
GUARD_MS = 50

#: KEYS: per limit, its log of calls made and its log of slots reserved by waiters.
#: ARGV: this call's unique id, the waiter's name ("" for a caller that does not wait),
#: then (calls, window ms) per limit. Returns 0 when the call took a token from every
#: limit, else the milliseconds to wait.
_TAKE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local call, waiter = ARGV[1], ARGV[2]
local limits = #KEYS / 2
local function limit(i)
  return KEYS[2 * i - 1], KEYS[2 * i], tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
end
local function score(key, index)
  return tonumber(redis.call('ZRANGE', key, index, index, 'WITHSCORES')[2])
end

local slotted = waiter ~= ''
for i = 1, limits do
  local made, slots, _, window = limit(i)
  redis.call('ZREMRANGEBYSCORE', made, '-inf', now - window)
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now - window)
  slotted = slotted and redis.call('ZSCORE', slots, waiter) ~= false
end

-- A waiter back for its slot goes when its window has room; anyone else also waits
-- while others wait ahead of it, so nobody jumps the queue.
local full, queued = {}, false
for i = 1, limits do
  local made, slots, calls = limit(i)
  if waiter ~= '' and not slotted then redis.call('ZREM', slots, waiter) end
  if redis.call('ZCARD', made) >= calls then full[i] = true end
  if redis.call('ZCARD', slots) > 0 then queued = true end
end

if next(full) == nil and (slotted or not queued) then
  for i = 1, limits do
    local made, slots, _, window = limit(i)
    if slotted then redis.call('ZREM', slots, waiter) end
    redis.call('ZADD', made, now, call)
    redis.call('PEXPIRE', made, window)
  end
  return 0
end

if slotted then
  -- Its turn, but calls made late still fill its window: wait until the oldest leaves.
  local wait = 1
  for i in pairs(full) do
    local made, _, calls, window = limit(i)
    local count = redis.call('ZCARD', made)
    wait = math.max(wait, score(made, count - calls) + window - now)
  end
  return wait
end

-- The end of the queue: in each limit the waiters fill, one even share of the window
-- after the last slot, and once the call or slot `calls` back has left the window.
local slot = now
for i = 1, limits do
  local made, slots, calls, window = limit(i)
  local count, waiting = redis.call('ZCARD', made), redis.call('ZCARD', slots)
  if count + waiting >= calls then
    if waiting >= calls then
      slot = math.max(slot, score(slots, waiting - calls) + window)
    else
      slot = math.max(slot, score(made, count + waiting - calls) + window)
    end
    if waiting > 0 then slot = math.max(slot, score(slots, -1) + window / calls) end
  end
end
slot = math.ceil(slot)
if waiter ~= '' then
  for i = 1, limits do
    local _, slots, _, window = limit(i)
    redis.call('ZADD', slots, slot, waiter)
    redis.call('PEXPIRE', slots, slot - now + window)
  end
end
return slot - now
"""


@dataclass(frozen=True)
class Limit:
    """At most ``calls`` calls in any ``seconds``; ``calls`` of 0 or less means no limit."""

    name: str
    calls: int
    seconds: float


class SlidingLogRateLimiter(RateLimiter):
    """A Dramatiq rate limiter over one sliding log per limit that says how long to wait.

    Parameters:
      backend: Dramatiq's Redis backend (its client runs the script).
      key: The prefix of this limiter's logs.
      limits: Every limit a call must fit in; a token is taken from all or none.
      guard_ms: Added to every window (see ``GUARD_MS``).
    """

    def __init__(
        self, backend: RedisBackend, key: str, limits: Sequence[Limit], guard_ms: int = 0
    ) -> None:
        super().__init__(backend, key)
        self.limits = [limit for limit in limits if limit.calls > 0]
        self.guard_ms = guard_ms

    def take(self, waiter: str | None = None) -> float:
        """Take a token now, or say how long to wait for one.

        Parameters:
          waiter: Names a caller that will come back when told (a reply's job): it
            reserves the next free slot, and coming back takes that slot's token.
            Without it nothing is reserved (a typing indicator is not worth a wait).

        Returns:
          0.0 when taken; otherwise the seconds until the caller's slot.
        """
        if not self.limits:
            return 0.0
        keys = [f"{self.key}:{limit.name}:{log}" for limit in self.limits for log in LOGS]
        args: list = [uuid.uuid4().hex, waiter or ""]
        for limit in self.limits:
            args += [limit.calls, int(limit.seconds * 1000) + self.guard_ms]
        wait_ms = self.backend.client.register_script(_TAKE)(keys=keys, args=args)
        return int(wait_ms) / 1000

    def _acquire(self) -> bool:
        return self.take() == 0.0

    def _release(self) -> None:
        """Nothing to give back: a call made stays in the log until its window passes."""


def for_replies(connection: PlatformConnection) -> SlidingLogRateLimiter:
    """The limiter a reply on ``connection`` goes through: daily quota and burst."""
    return _limiter(connection, [_daily_quota(connection), _burst(connection)])


def for_calls(connection: PlatformConnection) -> SlidingLogRateLimiter:
    """The limiter other calls (read receipts, typing) go through: burst only."""
    return _limiter(connection, [_burst(connection)])


def _limiter(connection: PlatformConnection, limits: list[Limit]) -> SlidingLogRateLimiter:
    key = f"snorq:limits:{connection.platform}:{connection.id}"
    return SlidingLogRateLimiter(RedisBackend(client=get_redis()), key, limits, GUARD_MS)


def _daily_quota(connection: PlatformConnection) -> Limit:
    quota = connection.daily_quota
    if quota is None:
        quota = get_settings().daily_quotas[connection.platform]
    return Limit("daily", quota, DAY_SECONDS)


def _burst(connection: PlatformConnection) -> Limit:
    calls, seconds = get_platform(connection.platform).burst_limit
    if connection.burst_limit is not None:
        calls = connection.burst_limit
    return Limit("burst", calls, seconds)
