"""Customers' messages posted to SNORQ the way the platforms post them.

Each message is a real-shaped webhook (the platform simulator's payload builders),
signed as its platform signs it at the moment it is posted: Meta's
``X-Hub-Signature-256`` over the escaped body, TikTok's ``t=…,s=…`` over
``"<t>." + body``. Messages leave at a steady rate from a few sender threads. Any
answer but 200, or no answer, is delivered again later with growing pauses until
SNORQ acknowledges it, as Meta retries a webhook for days: a 200 is the only
thing that makes a platform forget a message.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import requests

from app.simulator.accounts import Account
from app.simulator.customer import customer
from app.simulator.delivery import signed, webhook_url
from app.simulator.inbound import message_webhook

#: Pauses before each new delivery of a refused webhook; then every last one.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
#: Seconds SNORQ has to answer (Messenger asks for 5 at most; Meta gives up later).
POST_TIMEOUT = 10.0
#: In every customer text: ASCII, so it reads the same in an escaped Meta body, and
#: no log line may ever hold it.
MARKER = "where-is-parcel"
PLATFORMS = ("whatsapp", "facebook", "tiktok")
#: Customer ids on each platform: a phone number, a page-scoped id, a TikTok user id.
_CUSTOMER_PREFIXES = {"whatsapp": "1555010", "facebook": "65432100000", "tiktok": "71234567890000"}


@dataclass
class Webhook:
    """One customer message and what became of its deliveries."""

    platform: str
    external_id: str
    payload: dict = field(repr=False)
    attempts: int = 0
    outcomes: list[str] = field(default_factory=list)
    acknowledged_at: float | None = None


def customer_messages(count: int, accounts: Mapping[str, str], customers: int = 20):
    """``count`` messages from ``customers`` people per platform, the platforms in turn."""
    messages = []
    for number, platform in zip(range(count), itertools.cycle(PLATFORMS), strict=False):
        account = Account.described(platform, accounts[platform])
        who = customer(platform, f"{_CUSTOMER_PREFIXES[platform]}{number % customers:04d}")
        text = f"#{number} {MARKER} {secrets.token_hex(4)}: ¿dónde está mi pedido? 📦"
        external_id, payload = message_webhook(account, who, text=text)
        messages.append(Webhook(platform, external_id, payload))
    return messages


class PlatformLoad:
    """Delivers webhooks to SNORQ at a steady rate, each again until it is acknowledged.

    Parameters:
      snorq_url: Where SNORQ's web runs.
      signing_secrets: The secret each platform signs its webhooks with.
      senders: Deliveries in flight at once at most.
    """

    def __init__(
        self, snorq_url: str, signing_secrets: Mapping[str, str], *, senders: int = 8
    ) -> None:
        self.snorq_url = snorq_url
        self.signing_secrets = signing_secrets
        self.senders = senders
        self.webhooks: list[Webhook] = []
        #: ``(seconds since start, outcome, seconds the answer took)`` of every delivery.
        self.log: list[tuple[float, str, float]] = []
        self.started = 0.0
        self._due: list[tuple[float, int, Webhook]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._running = False
        self._threads: list[threading.Thread] = []

    def start(self, webhooks: list[Webhook], rate: float) -> None:
        """Deliver ``webhooks`` in order, ``rate`` per second, from now on."""
        self.webhooks = webhooks
        self.started = time.monotonic()
        with self._wake:
            for number, webhook in enumerate(webhooks):
                heapq.heappush(
                    self._due, (self.started + number / rate, next(self._order), webhook)
                )
            self._running = True
        self._threads = [
            threading.Thread(target=self._send, name=f"platform-{n}", daemon=True)
            for n in range(self.senders)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._wake:
            self._running = False
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(POST_TIMEOUT + 5)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def acknowledged(self) -> int:
        return sum(webhook.acknowledged_at is not None for webhook in self.webhooks)

    def outcomes(self) -> dict[str, int]:
        """How many deliveries got each answer (a status code, or the error of no answer)."""
        return dict(collections.Counter(outcome for _, outcome, _ in self.log))

    def answers_between(self, start: float, end: float) -> dict[str, int]:
        """The outcomes of deliveries made between ``start`` and ``end`` (seconds since start)."""
        return dict(collections.Counter(o for at, o, _ in self.log if start <= at <= end))

    def _send(self) -> None:
        session = requests.Session()
        while True:
            with self._wake:
                while self._running and (not self._due or self._due[0][0] > time.monotonic()):
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._wake.wait(timeout)
                if not self._running:
                    return
                _, _, webhook = heapq.heappop(self._due)
            self._deliver(session, webhook)

    def _deliver(self, session: requests.Session, webhook: Webhook) -> None:
        webhook.attempts += 1
        body, headers = signed(
            webhook.platform, webhook.payload, self.signing_secrets[webhook.platform], time.time()
        )
        posted = time.monotonic()
        try:
            response = session.post(
                webhook_url(self.snorq_url, webhook.platform),
                data=body,
                headers=headers,
                timeout=POST_TIMEOUT,
            )
            outcome = str(response.status_code)
        except requests.RequestException as error:
            outcome = type(error).__name__
        answered = time.monotonic()
        webhook.outcomes.append(outcome)
        with self._wake:
            self.log.append((posted - self.started, outcome, answered - posted))
            if outcome == "200":
                webhook.acknowledged_at = answered - self.started
                return
            pause = RETRY_DELAYS[min(webhook.attempts, len(RETRY_DELAYS)) - 1]
            heapq.heappush(self._due, (answered + pause, next(self._order), webhook))
            self._wake.notify()
