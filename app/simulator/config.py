"""What a simulator needs to know: where SNORQ is, the apps' secrets, how fast it answers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.config import ConfigError, PlatformSecrets, Settings

#: Each platform's own throughput limit per account: (requests, seconds).
#: PLATFORMS.md: WhatsApp 80 messages/s per number, Messenger 300 calls/s per
#: Page, TikTok 600 requests/min per endpoint.
PLATFORM_THROUGHPUT = {"whatsapp": (80, 1.0), "facebook": (300, 1.0), "tiktok": (600, 60.0)}

#: Seconds between a send and each receipt the customer's phone sends back.
REALISTIC_DELAYS = (0.3, 1.5)

#: How long a platform waits before delivering a refused webhook again.
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def parse_delays(value: str | None) -> tuple[float, float]:
    """``"MIN,MAX"`` seconds (``SNORQ_SIMULATOR_DELAYS``); realistic ones when unset.

    Raises:
      ConfigError: the value is not two numbers with ``0 <= MIN <= MAX``.
    """
    if not value:
        return REALISTIC_DELAYS
    try:
        shortest, longest = (float(part) for part in value.split(","))
    except ValueError:
        raise ConfigError(f"SNORQ_SIMULATOR_DELAYS: {value!r} is not MIN,MAX in seconds") from None
    if not 0 <= shortest <= longest:
        raise ConfigError(f"SNORQ_SIMULATOR_DELAYS: {value!r} needs 0 <= MIN <= MAX")
    return shortest, longest


@dataclass(frozen=True)
class SimulatorConfig:
    """The settings of one simulator.

    Parameters:
      snorq_url: The SNORQ instance its webhooks go to (``…/api/v1/webhooks/<platform>``).
      apps: Per platform, the app SNORQ is registered as: app id (TikTok client
        key), app secret, and the secret the platform signs webhooks with.
      delays: The shortest and longest pause before each receipt (seconds).
      throughput: Per platform, the requests allowed per account in a window.
      retry_delays: Pauses before delivering a refused webhook again.
    """

    snorq_url: str
    apps: Mapping[str, PlatformSecrets]
    delays: tuple[float, float] = REALISTIC_DELAYS
    throughput: Mapping[str, tuple[int, float]] = field(
        default_factory=lambda: dict(PLATFORM_THROUGHPUT)
    )
    retry_delays: tuple[float, ...] = RETRY_DELAYS

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> SimulatorConfig:
        """A simulator for the SNORQ these settings describe (same secrets, its public URL).

        Its receipts keep the pace of ``SNORQ_SIMULATOR_DELAYS`` unless ``delays`` is given.

        Raises:
          ConfigError: ``SNORQ_SIMULATOR_DELAYS`` is malformed.
        """
        overrides.setdefault("snorq_url", settings.public_url)
        if "delays" not in overrides:
            overrides["delays"] = parse_delays(os.environ.get("SNORQ_SIMULATOR_DELAYS"))
        return cls(apps=dict(settings.platforms), **overrides)

    def app(self, platform: str) -> PlatformSecrets:
        return self.apps[platform]
