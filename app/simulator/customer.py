"""The fake customer at the other end: who they are, and how quickly their phone answers.

Every reply SNORQ sends reaches this customer, whose phone acknowledges it the
way each platform reports it (sent, delivered, read) after short, random pauses.
"""

from __future__ import annotations

import hashlib
import random
import threading
import unicodedata
from dataclasses import dataclass

_FIRST_NAMES = ("Zoë", "Ana", "Björn", "Chloé", "Dario", "Émile", "Farah", "Gunnar", "Hana")
_LAST_NAMES = ("Ångström", "Ruiz", "Okafor", "Nguyễn", "Müller", "Costa", "Dubois", "Kowalski")


@dataclass(frozen=True)
class Customer:
    """A person on one platform: phone number (WhatsApp), PSID, or TikTok user id."""

    platform: str
    external_id: str
    name: str
    username: str | None = None

    @property
    def first_name(self) -> str:
        return self.name.split(" ", 1)[0]

    @property
    def last_name(self) -> str:
        return self.name.split(" ", 1)[1] if " " in self.name else ""


#: Who writes when nobody says otherwise (``snorq simulate`` in the sandbox).
DEFAULT_CONTACTS = {
    "whatsapp": "15551234567",
    "facebook": "6543210987654321",
    "tiktok": "7123456789012345678",
}


def customer(platform: str, external_id: str | None = None, name: str | None = None) -> Customer:
    """The customer with this id (the platform's default one if none), named if unnamed."""
    external_id = external_id or DEFAULT_CONTACTS[platform]
    name = name or _name_for(external_id)
    username = None
    if platform == "tiktok":
        # TikTok handles are ASCII: "Zoë Ångström" writes as zoe.1234.
        first = unicodedata.normalize("NFKD", name.split(" ", 1)[0]).encode("ascii", "ignore")
        username = f"{first.decode().lower() or 'user'}.{external_id[-4:]}"
    return Customer(platform, external_id, name, username)


class Customers:
    """Every customer who wrote, under the name they were given, per platform and id.

    A platform never renames someone between messages, so neither may the
    simulator: a profile lookup, a TikTok participant list and the next message
    all carry the name the customer's first message was given.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[tuple[str, str], str] = {}

    def get(
        self, platform: str, external_id: str | None = None, name: str | None = None
    ) -> Customer:
        """The customer with this id (the platform's default one if none).

        A ``name`` given is theirs from now on; without one, the name given
        before, or else one made up from the id.
        """
        external_id = external_id or DEFAULT_CONTACTS[platform]
        with self._lock:
            if name:
                self._names[(platform, external_id)] = name
            else:
                name = self._names.get((platform, external_id))
        return customer(platform, external_id, name)


def _name_for(external_id: str) -> str:
    number = int(hashlib.sha256(external_id.encode()).hexdigest(), 16)
    first = _FIRST_NAMES[number % len(_FIRST_NAMES)]
    last = _LAST_NAMES[(number // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
    return f"{first} {last}"


class Pace:
    """Pauses between a send and each receipt, drawn between ``shortest`` and ``longest``."""

    def __init__(self, shortest: float, longest: float) -> None:
        self.shortest = shortest
        self.longest = longest

    def moments(self, steps: int) -> list[float]:
        """Seconds from now to each of ``steps`` receipts, in order."""
        moments, elapsed = [], 0.0
        for _ in range(steps):
            elapsed += random.uniform(self.shortest, self.longest)
            moments.append(elapsed)
        return moments
