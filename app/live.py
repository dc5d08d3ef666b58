"""Live events for staff pages: numbered per organization, published through Redis.

Each event gets the organization's next sequence number, is kept in a bounded
per-organization log (so a page that reconnects can ask for everything after
the last number it saw) and is published on the organization's channel — all
in one atomic Redis script, so the published order is the numbered order.

What is stale within seconds (who is viewing a conversation, ``app/presence.py``)
is announced on the same channel without a number and is not kept: a page that
reconnects asks again instead of catching up.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from app.redis_client import get_redis

log = logging.getLogger(__name__)

#: Events kept per organization for catch-up.
RETAINED_EVENTS = 10_000

#: Numbers, keeps and publishes each event of ARGV[2..] (KEYS: three per event, from
#: :func:`_keys`); ARGV[1] is how many events an organization's log keeps.
_PUBLISH = """
local retained = tonumber(ARGV[1])
local numbers = {}
for i = 2, #ARGV do
  local seq_key, log_key, channel = KEYS[3 * i - 5], KEYS[3 * i - 4], KEYS[3 * i - 3]
  local seq = redis.call('INCR', seq_key)
  local event = '{"seq":' .. seq .. ',' .. string.sub(ARGV[i], 2)
  redis.call('ZADD', log_key, seq, event)
  redis.call('ZREMRANGEBYRANK', log_key, 0, -(retained + 1))
  redis.call('PUBLISH', channel, event)
  numbers[#numbers + 1] = seq
end
return numbers
"""


def _channel_prefix() -> str:
    """Channels are server-wide in Redis (not per database), so they name the database."""
    database = get_redis().connection_pool.connection_kwargs.get("db", 0)
    return f"snorq:{database}:live:"


def _keys(organization_id: int) -> list[str]:
    base = f"snorq:events:{organization_id}"
    return [f"{base}:seq", f"{base}:log", f"{_channel_prefix()}{organization_id}"]


def publish(organization_id: int, event_type: str, data: dict) -> int:
    """Number and publish one event to an organization's staff.

    Returns:
      The event's sequence number.
    """
    return publish_all([(organization_id, event_type, data)])[0]


def publish_all(events: list[tuple[int, str, dict]]) -> list[int]:
    """Number and publish ``(organization id, type, data)`` events, in order, in one call.

    Returns:
      Each event's sequence number.
    """
    if not events:
        return []
    keys = [key for organization_id, _, _ in events for key in _keys(organization_id)]
    bodies = [_body(event_type, data) for _, event_type, data in events]
    numbers = _publish_script(get_redis())(keys=keys, args=[RETAINED_EVENTS, *bodies])
    return [int(number) for number in numbers]


@functools.lru_cache(maxsize=1)
def _publish_script(client: redis.Redis):
    # Run by its SHA: the script's text goes to Redis once, not with every event.
    return client.register_script(_PUBLISH)


def _body(event_type: str, data: dict) -> str:
    return json.dumps({"type": event_type, "data": data}, separators=(",", ":"), default=str)


def announce(organization_id: int, event_type: str, data: dict) -> None:
    """Send one event to the organization's open pages, without a number or a place in the log."""
    get_redis().publish(_keys(organization_id)[2], _body(event_type, data))


def events_since(organization_id: int, seq: int) -> tuple[list[dict], bool]:
    """The organization's retained events after ``seq``, oldest first.

    Returns:
      ``(events, complete)``; ``complete`` is False when events after ``seq`` were
      already dropped from the log, so the caller should reload instead.
    """
    seq_key, log_key, _ = _keys(organization_id)
    # One transaction, so an event published meanwhile cannot look like a gap.
    reads = get_redis().pipeline(transaction=True)
    reads.zrangebyscore(log_key, f"({seq}", "+inf")
    reads.zrange(log_key, 0, 0, withscores=True)
    reads.get(seq_key)
    raw, oldest, latest = reads.execute()
    events = [json.loads(item) for item in raw]
    latest = int(latest or 0)
    complete = seq >= latest or (bool(oldest) and oldest[0][1] <= seq + 1)
    return events, complete


def latest_seq(organization_id: int) -> int:
    return int(get_redis().get(_keys(organization_id)[0]) or 0)


def ping() -> None:
    """Publish on a channel beside the organizations' (no page listens to it).

    Raises:
      redis.RedisError: live events cannot go out now.
    """
    get_redis().publish(_channel_prefix().removesuffix("live:") + "ready", b"")


class Hub:
    """Fans the organization channels out to the subscribers of one web process.

    One background thread holds a single Redis subscription for the whole
    process; each websocket gets a queue of its organization's events.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[int, set[queue.Queue]] = defaultdict(set)
        self._thread: threading.Thread | None = None
        #: Whether the subscription is up (False while it reconnects).
        self.listening = False

    @property
    def started(self) -> bool:
        """Whether a page ever subscribed in this process (the subscription is lazy)."""
        return self._thread is not None

    @contextmanager
    def subscription(self, organization_id: int) -> Iterator[queue.Queue]:
        """A queue receiving the organization's events (as dicts) while open."""
        inbox: queue.Queue = queue.Queue(maxsize=1000)
        with self._lock:
            self._queues[organization_id].add(inbox)
            self._start()
        try:
            yield inbox
        finally:
            with self._lock:
                self._queues[organization_id].discard(inbox)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self._listen()
            except redis.RedisError:
                log.warning("Live event subscription lost; reconnecting")
                time.sleep(1)

    def _listen(self) -> None:
        pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe(f"{_channel_prefix()}*")
        self.listening = True
        try:
            while True:
                message = pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._deliver(message["channel"], message["data"])
        finally:
            self.listening = False
            pubsub.close()

    def _deliver(self, channel: bytes, data: bytes) -> None:
        organization_id = int(channel.decode().removeprefix(_channel_prefix()))
        event = json.loads(data)
        with self._lock:
            inboxes = list(self._queues.get(organization_id, ()))
        for inbox in inboxes:
            try:
                inbox.put_nowait(event)
            except queue.Full:
                log.warning("A live subscriber is not keeping up; it will catch up by sequence")


hub = Hub()
