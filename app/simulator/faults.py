"""Faults a test injects into the simulator, and the platforms' own throughput limits.

A fault answers the next ``count`` matching requests in place of the platform:
``429`` (throttled, with ``Retry-After``), ``5xx`` (the platform failed),
``expired_token``, ``outside_window`` (the messaging window is closed), or it
delays them: ``slow`` waits before handling the request, ``timeout`` handles it
(the send happens) and then holds the answer longer than a client waits.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from flask import Response

from app.config import PLATFORMS
from app.simulator.errors import (
    ApiError,
    TikTokCode,
    expired_token,
    graph_error,
    messenger_throttled,
    tiktok_error,
    tiktok_throttled,
    whatsapp_throttled,
)

KINDS = ("429", "5xx", "expired_token", "outside_window", "slow", "timeout")
#: What a request does: a message, a read receipt or typing indicator, a token
#: exchange, a media upload or download, or any other lookup.
ENDPOINTS = ("send", "action", "token", "media", "lookup", "any")

#: Seconds ``slow`` and ``timeout`` hold a request unless the fault says.
DEFAULT_DELAYS = {"slow": 3.0, "timeout": 30.0}


@dataclass
class Fault:
    id: int
    platform: str
    kind: str
    count: int = 1
    endpoint: str = "send"
    account_id: str | None = None
    retry_after: int = 1
    delay: float = 0.0
    status: int | None = None

    def matches(self, platform: str, endpoint: str, account_id: str | None) -> bool:
        return (
            self.platform == platform
            and self.endpoint in (endpoint, "any")
            and self.account_id in (None, account_id)
        )


class FaultBook:
    """The faults waiting to happen, taken one request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: Mapping) -> Fault:
        """Add a fault described as the control endpoint receives it.

        Raises:
          ValueError: the description names an unknown platform, kind or endpoint.
        """
        platform, kind = spec.get("platform"), str(spec.get("kind", ""))
        endpoint = spec.get("endpoint", "send")
        if platform not in PLATFORMS or kind not in KINDS or endpoint not in ENDPOINTS:
            raise ValueError(
                f"platform must be one of {PLATFORMS}, kind one of {KINDS}, "
                f"endpoint one of {ENDPOINTS}"
            )
        fault = Fault(
            id=0,
            platform=platform,
            kind=kind,
            count=int(spec.get("count", 1)),
            endpoint=endpoint,
            account_id=spec.get("account_id"),
            retry_after=int(spec.get("retry_after", 1)),
            delay=float(spec.get("delay", DEFAULT_DELAYS.get(kind, 0.0))),
            status=None if spec.get("status") is None else int(spec["status"]),
        )
        if fault.count < 1 or fault.retry_after < 0 or fault.delay < 0:
            raise ValueError("count must be at least 1; retry_after and delay not negative")
        if fault.status is not None and not 500 <= fault.status <= 599:
            raise ValueError("status must be a 5xx HTTP status")
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def take(self, platform: str, endpoint: str, account_id: str | None) -> Fault | None:
        """The first fault for this request, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(platform, endpoint, account_id):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[dict]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


def answer(fault: Fault | None, handle: Callable[[], Response]) -> Response:
    """Handle a request the way ``fault`` says (normally when there is none)."""
    if fault is None:
        return handle()
    if fault.kind == "slow":
        time.sleep(fault.delay)
        return handle()
    if fault.kind == "timeout":
        response = handle()
        time.sleep(fault.delay)
        return response
    raise fault_error(fault)


def fault_error(fault: Fault) -> ApiError:
    """The error the platform answers for a fault of this kind."""
    if fault.platform == "tiktok":
        return _tiktok_fault(fault)
    whatsapp = fault.platform == "whatsapp"
    if fault.kind == "429":
        headers = {"Retry-After": str(fault.retry_after)}
        return (whatsapp_throttled if whatsapp else messenger_throttled)(429, headers)
    if fault.kind == "5xx":
        if whatsapp:
            return graph_error(
                fault.status or 500,
                131000,
                "(#131000) Something went wrong",
                whatsapp_details="Something went wrong.",
            )
        return graph_error(
            fault.status or 500,
            2,
            "An unexpected error has occurred. Please retry your request later.",
            transient=True,
        )
    if fault.kind == "expired_token":
        return expired_token()
    if whatsapp:
        return graph_error(
            400,
            131047,
            "(#131047) Re-engagement message",
            whatsapp_details="Message failed to send because more than 24 hours have passed "
            "since the customer last replied to this number.",
        )
    return graph_error(
        400,
        10,
        "(#10) This message is sent outside of allowed window.",
        subcode=2018278,
    )


def _tiktok_fault(fault: Fault) -> ApiError:
    if fault.kind == "429":
        return tiktok_throttled(429, {"Retry-After": str(fault.retry_after)})
    if fault.kind == "5xx":
        return tiktok_error(TikTokCode.SYSTEM_ERROR, "System error.", status=fault.status or 500)
    if fault.kind == "expired_token":
        return tiktok_error(
            TikTokCode.INVALID_ACCESS_TOKEN, "Access token is incorrect or has been revoked."
        )
    return tiktok_error(
        TikTokCode.RESTRICTED,
        "Your message was blocked due to messaging restrictions: "
        "the user has not messaged you in the last 48 hours.",
    )


class Throughput:
    """Sliding-window counts of requests per account; refuses what the platform would."""

    def __init__(self, limits: Mapping[str, tuple[int, float]]) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._arrivals: dict[tuple, collections.deque] = {}

    def admit(self, platform: str, key: tuple, now: float) -> bool:
        """Count one request for ``key``; False when it is over the platform's limit."""
        limit, window = self._limits[platform]
        with self._lock:
            arrivals = self._arrivals.setdefault((platform, *key), collections.deque())
            while arrivals and arrivals[0] <= now - window:
                arrivals.popleft()
            if len(arrivals) >= limit:
                return False
            arrivals.append(now)
            return True
