"""A simulator of the WhatsApp Cloud API, the Messenger Platform and TikTok Business Messaging.

It speaks the platforms' real protocols (../shared/PLATFORMS.md) under one base
URL, so SNORQ can be pointed at it with ``GRAPH_API_URL``, ``TIKTOK_API_URL``,
``TIKTOK_AUTH_URL`` and ``FACEBOOK_AUTH_URL``:

- ``/graph/<version>/…``: the Graph API — WhatsApp and Messenger sends and read
  receipts, media, user profiles, OAuth code exchange, ``debug_token``, Pages,
  phone numbers, webhook subscriptions, batch requests;
- ``/facebook/<version>/dialog/oauth``: Meta's login dialog;
- ``/tiktok/open_api/v1.3/…`` and ``/tiktok/v2/auth/authorize/``: TikTok for Business;
- ``/_simulator/…``: the control endpoints (faults, what was received, accounts).

After each accepted send, the fake customer's receipts come back to SNORQ as
signed webhooks. ``python -m app.simulator`` runs it on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask, current_app

from app.simulator.accounts import Registry
from app.simulator.config import SimulatorConfig
from app.simulator.customer import Customers, Pace
from app.simulator.delivery import Deliveries
from app.simulator.errors import ApiError
from app.simulator.faults import FaultBook, Throughput
from app.simulator.journal import Journal
from app.simulator.media import MediaStore


class Simulator:
    """The simulated platforms' state, shared by every request thread (each part locks)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.registry = Registry()
        self.media = MediaStore()
        self.customers = Customers()
        self.faults = FaultBook()
        self.journal = Journal()
        self.throughput = Throughput(config.throughput)
        self.pace = Pace(*config.delays)
        self.deliveries = Deliveries(
            config.snorq_url,
            {name: secrets.webhook_secret for name, secrets in config.apps.items()},
            config.retry_delays,
        )

    def acknowledge(
        self, platform: str, receipts: list[tuple[str, Callable[[float], dict]]]
    ) -> None:
        """Send the customer's receipts for a message, each a moment after the one before.

        Parameters:
          receipts: ``(summary, build)`` pairs; ``build(at)`` makes the webhook
            payload stamped with the moment ``at`` (epoch seconds) it happens.
        """
        now = time.time()
        for moment, (summary, build) in zip(
            self.pace.moments(len(receipts)), receipts, strict=True
        ):
            self.deliveries.schedule(platform, build(now + moment), moment, summary)


def create_simulator_app(config: SimulatorConfig) -> Flask:
    """The simulator as a WSGI app (mount it, or serve it on its own port)."""
    from app.simulator import control, dialogs, graph, incoming, tiktok

    app = Flask(__name__, static_folder=None)
    app.extensions["simulator"] = Simulator(config)
    app.register_error_handler(ApiError, ApiError.response)
    incoming.init_app(app)
    for module in (graph, dialogs, tiktok, control):
        module.init_app(app)
    return app


def current() -> Simulator:
    """The simulator serving the current request."""
    return current_app.extensions["simulator"]
