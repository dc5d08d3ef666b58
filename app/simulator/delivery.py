"""Webhooks from the simulated platforms to SNORQ: signed as each platform signs them.

Meta sends ``\\uXXXX``-escaped JSON with ``\\/`` and signs those exact bytes
(``X-Hub-Signature-256: sha256=<hex>``, keyed with the app secret). TikTok sends
UTF-8 JSON whose ``content`` is itself a JSON string, and signs ``"<t>." + body``
(``TikTok-Signature: t=<unix seconds>,s=<hex>``). ../shared/PLATFORMS.md

Deliveries are posted on a schedule (each receipt at its moment) and retried
when SNORQ does not answer 2xx, as the platforms retry.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import requests

log = logging.getLogger(__name__)

#: Seconds SNORQ has to answer one webhook.
POST_TIMEOUT = 10.0
#: Finished deliveries kept for ``GET /_simulator/webhooks``.
HISTORY = 10_000


def meta_body(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=True).replace("/", "\\/").encode()


def tiktok_body(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def _hex_hmac(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def signed(platform: str, payload: dict, secret: str, now: float) -> tuple[bytes, dict]:
    """The body and headers ``platform`` would post for ``payload`` at ``now``."""
    if platform == "tiktok":
        body = tiktok_body(payload)
        at = int(now)
        signature = _hex_hmac(secret, f"{at}.".encode() + body)
        return body, {
            "TikTok-Signature": f"t={at},s={signature}",
            "Content-Type": "application/json",
        }
    body = meta_body(payload)
    return body, {
        "X-Hub-Signature-256": "sha256=" + _hex_hmac(secret, body),
        "Content-Type": "application/json",
    }


def webhook_url(snorq_url: str, platform: str) -> str:
    return f"{snorq_url.rstrip('/')}/api/v1/webhooks/{platform}"


@dataclass
class Delivery:
    platform: str
    payload: dict
    summary: str
    attempts: int = 0
    outcomes: list[str] = field(default_factory=list)


class Deliveries:
    """Posts webhooks to SNORQ when they are due, from a few background threads.

    Parameters:
      snorq_url: Where SNORQ runs.
      secrets: The webhook signing secret of each platform.
      retry_delays: Seconds before each new attempt after a refusal.
    """

    def __init__(
        self, snorq_url: str, secrets: Mapping[str, str], retry_delays=(1.0,), workers: int = 4
    ) -> None:
        self.snorq_url = snorq_url
        self._secrets = secrets
        self._retry_delays = tuple(retry_delays)
        self._workers = workers
        self._due: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False
        self._in_flight = 0
        self._history: collections.deque[dict] = collections.deque(maxlen=HISTORY)

    def schedule(self, platform: str, payload: dict, delay: float, summary: str) -> None:
        """Post ``payload`` to SNORQ's ``platform`` webhook in ``delay`` seconds."""
        self._push(time.monotonic() + delay, Delivery(platform, payload, summary))

    def pending(self) -> int:
        with self._wake:
            return len(self._due) + self._in_flight

    def finished(self) -> list[dict]:
        """Deliveries done with, oldest first: delivered, or given up after every retry."""
        with self._wake:
            return list(self._history)

    def close(self) -> None:
        """Stop posting; what is still due is dropped."""
        with self._wake:
            self._closed = True
            self._due.clear()
            self._wake.notify_all()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _push(self, due: float, delivery: Delivery) -> None:
        with self._wake:
            if self._closed:
                return
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    self._workers, thread_name_prefix="simulator-webhooks"
                )
                threading.Thread(target=self._dispatch, name="simulator-clock", daemon=True).start()
            heapq.heappush(self._due, (due, next(self._order), delivery))
            self._wake.notify()

    def _dispatch(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._wake.wait(timeout)
                if self._closed:
                    return
                _, _, delivery = heapq.heappop(self._due)
                self._in_flight += 1
                # Under the lock, so close() cannot shut the pool between pop and submit.
                self._pool.submit(self._post, delivery)

    def _post(self, delivery: Delivery) -> None:
        delivery.attempts += 1
        body, headers = signed(
            delivery.platform, delivery.payload, self._secrets[delivery.platform], time.time()
        )
        url = webhook_url(self.snorq_url, delivery.platform)
        try:
            response = requests.post(url, data=body, headers=headers, timeout=POST_TIMEOUT)
            outcome, delivered = str(response.status_code), response.ok
        except requests.RequestException as error:
            outcome, delivered = type(error).__name__, False
        delivery.outcomes.append(outcome)
        retry = not delivered and delivery.attempts <= len(self._retry_delays)
        if retry:
            self._push(time.monotonic() + self._retry_delays[delivery.attempts - 1], delivery)
        else:
            self._finish(delivery, delivered)
        with self._wake:
            self._in_flight -= 1

    def _finish(self, delivery: Delivery, delivered: bool) -> None:
        if not delivered:
            log.warning(
                "Gave up delivering a %s webhook (%s) after %d attempts",
                delivery.platform,
                delivery.summary,
                delivery.attempts,
            )
        entry = {
            "platform": delivery.platform,
            "summary": delivery.summary,
            "delivered": delivered,
            "attempts": delivery.attempts,
            "outcomes": delivery.outcomes,
            "finished_at": time.time(),
        }
        with self._wake:
            self._history.append(entry)
