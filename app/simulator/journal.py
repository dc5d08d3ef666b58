"""What the simulator was asked and what it answered, for tests to inspect.

Every API request is kept in arrival order with its arrival time, platform,
endpoint kind, account and JSON body (never its token), so a test can check
that nothing was sent twice or that a rate limit was respected.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Mapping

#: Entries kept (the oldest go first).
CAPACITY = 100_000


class Journal:
    """A bounded, numbered, thread-safe list of entries."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._lock = threading.Lock()
        self._entries: collections.deque[dict] = collections.deque(maxlen=capacity)
        self._seq = 0

    def record(self, entry: dict) -> dict:
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, **entry}
            self._entries.append(entry)
        return entry

    def since(self, seq: int = 0, filters: Mapping[str, str] | None = None) -> list[dict]:
        """Entries after ``seq`` whose fields equal every filter given."""
        wanted = {key: value for key, value in (filters or {}).items() if value}
        with self._lock:
            entries = [entry for entry in self._entries if entry["seq"] > seq]
        return [e for e in entries if all(str(e.get(k)) == v for k, v in wanted.items())]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
