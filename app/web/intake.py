"""Hands verified webhook bodies to the queue in groups, acknowledging each only once queued.

A round trip to Redis costs more than everything else a webhook request does,
so requests that arrive together share one: the first request thread to find no
flush in progress becomes the leader and queues everything waiting (its own body
included) as one job, then wakes the others; bodies that arrive meanwhile go in
the next group. Alone, a request queues its body at once — no timer, no added
delay. Every request still answers only after the job holding its body is in
the broker, and every request of a failed group sees the failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Waiting:
    delivery: list
    size: int
    wake: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    queued: bool = False
    error: BaseException | None = None


class Intake:
    """Group commit in front of a ``send(deliveries)`` that enqueues one job.

    One request at a time leads. A leader's own delivery is always first in line
    (nothing waits while no one leads), so it flushes exactly one group — its
    own — and then hands the lead to the first delivery still waiting; no
    request queues more than its own group.

    Parameters:
      send: Enqueues a list of deliveries as one job; raises if it could not.
      max_group: The most deliveries in one job.
      max_bytes: The most body bytes in one job (a single larger body goes alone).
    """

    def __init__(
        self, send: Callable[[list], object], *, max_group: int = 64, max_bytes: int = 4 << 20
    ) -> None:
        self._send = send
        self._max_group = max_group
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._flushing = False

    def submit(self, delivery: list, size: int) -> None:
        """Queue ``delivery`` (``size`` body bytes); returns once it is in the broker.

        Raises:
          Exception: whatever ``send`` raised for the group holding this delivery.
        """
        entry = _Waiting(delivery, size)
        with self._lock:
            self._waiting.append(entry)
            entry.leads = not self._flushing
            self._flushing = True
        while not entry.queued:
            if entry.leads:
                self._flush_one_group()
            else:
                entry.wake.wait()
                entry.wake.clear()
        if entry.error is not None:
            raise entry.error

    def _flush_one_group(self) -> None:
        with self._lock:
            group = self._take_group()
        error = None
        try:
            self._send([entry.delivery for entry in group])
        except Exception as failure:
            error = failure
        for entry in group:
            entry.error, entry.queued = error, True
            entry.wake.set()
        with self._lock:
            if self._waiting:
                successor = self._waiting[0]
                successor.leads = True
                successor.wake.set()
            else:
                self._flushing = False

    def _take_group(self) -> list[_Waiting]:
        taken, total = 0, 0
        for entry in self._waiting:
            if taken and (taken == self._max_group or total + entry.size > self._max_bytes):
                break
            taken += 1
            total += entry.size
        group, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return group
