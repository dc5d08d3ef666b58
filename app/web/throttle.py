"""A throttle on sign-in attempts: counters in Redis per email and per client address.

Each attempt is counted *before* the password is checked, so a burst of parallel
guesses cannot slip past the limit; a successful sign-in takes its attempt back.
Windows are fixed (they start at the first attempt), so hammering a locked email
does not extend its lock. Emails are stored only as digests.
"""

from __future__ import annotations

import hashlib

from app.redis_client import get_redis

WINDOW_SECONDS = 15 * 60

#: Attempts allowed per window. An office shares one address, so it gets more.
EMAIL_LIMIT = 5
ADDRESS_LIMIT = 20

# Decrement only a live counter: one that expired meanwhile must not come back
# as a negative count with no expiry.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
"""


def _keys(email: str, address: str) -> list[tuple[str, int]]:
    digest = hashlib.sha256(email.encode()).hexdigest()
    return [
        (f"snorq:signin:email:{digest}", EMAIL_LIMIT),
        (f"snorq:signin:address:{address}", ADDRESS_LIMIT),
    ]


def attempt(email: str, address: str) -> int:
    """Count one sign-in attempt.

    Returns:
      0 when the attempt may go ahead, else the seconds until it may be tried again.
    """
    keys = _keys(email, address)
    pipe = get_redis().pipeline()
    for key, _ in keys:
        pipe.set(key, 0, ex=WINDOW_SECONDS, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
    results = pipe.execute()
    waits = [
        max(int(ttl), 1)
        for (_, limit), (_, count, ttl) in zip(keys, _triples(results), strict=True)
        if count > limit
    ]
    return max(waits, default=0)


def succeeded(email: str, address: str) -> None:
    """A sign-in worked: forget the email's failures and take back the address's attempt."""
    (email_key, _), (address_key, _) = _keys(email, address)
    get_redis().eval(_SUCCEEDED, 2, email_key, address_key)


def _triples(results: list) -> list[tuple]:
    return [tuple(results[i : i + 3]) for i in range(0, len(results), 3)]
