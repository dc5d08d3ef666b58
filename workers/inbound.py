"""Inbound: store each webhook body, parse it, apply its events, publish them live.

A job carries a group of deliveries (see ``app/web/intake.py``). Each body is
stored first, exactly as received, so nothing is lost whatever happens next; a
body the adapter cannot parse is kept with its error and never retried. Running
a job twice changes nothing: bodies are keyed by delivery id and every event is
applied idempotently.
"""

from __future__ import annotations

import datetime
import logging

import dramatiq

from app import connections, messages, metrics, routing
from app.db import utcnow
from app.messages import Notice
from app.models import WebhookEvent, WebhookStatus
from app.platforms import get_platform
from app.platforms.errors import ParseError
from app.platforms.events import (
    AuthorizationRevoked,
    Event,
    MessageEvent,
    PlatformNotice,
    StatusEvent,
    WatermarkEvent,
)
from workers.broker import INBOUND

log = logging.getLogger(__name__)


@dramatiq.actor(queue_name=INBOUND, max_retries=20, max_backoff=300_000, time_limit=120_000)
def ingest_webhooks(deliveries: list[list]) -> None:
    """Process ``[delivery_id, platform, body, received_at]`` deliveries, in order."""
    for delivery_id, platform, body, received_at in deliveries:
        event = store(delivery_id, platform, body.encode("utf-8", "surrogateescape"), received_at)
        if event.status == WebhookStatus.RECEIVED:
            process(event)


def store(delivery_id: str, platform: str, body: bytes, received_at: float) -> WebhookEvent:
    """Keep the body as received (once per delivery, however often the job runs)."""
    WebhookEvent.insert(
        delivery_id=delivery_id,
        platform=platform,
        body=body,
        received_at=datetime.datetime.fromtimestamp(received_at, datetime.UTC).replace(tzinfo=None),
    ).on_conflict_ignore().execute()
    return WebhookEvent.get(WebhookEvent.delivery_id == delivery_id)


def process(webhook: WebhookEvent) -> None:
    """Parse a stored body and apply its events; record how that went."""
    try:
        events = get_platform(webhook.platform).parse(bytes(webhook.body))
    except ParseError as error:
        metrics.count(f"webhook_parse_errors:{webhook.platform}")
        log.warning("Webhook %s from %s is malformed: %s", webhook.id, webhook.platform, error)
        _finish(webhook, WebhookStatus.FAILED, f"malformed payload: {error}")
        return
    unknown = sorted({e.account_id for e in events if not _apply(webhook.platform, e)})
    if unknown:
        _finish(webhook, WebhookStatus.FAILED, "unknown account: " + ", ".join(unknown))
    else:
        _finish(webhook, WebhookStatus.PROCESSED, None)


def _apply(platform: str, event: Event) -> bool:
    """Apply one event and publish what changed; False if no connection owns its account."""
    route = routing.route(platform, event.account_id)
    if route is None:
        metrics.count(f"webhook_unknown_account:{platform}")
        log.warning("No %s connection for account %s; event not stored", platform, event.account_id)
        return False
    messages.publish(_changes(route, event))
    return True


def _changes(route: routing.Route, event: Event) -> list[Notice]:
    match event:
        case MessageEvent():
            return messages.record_message(route, event)
        case StatusEvent():
            return messages.apply_status(route, event)
        case WatermarkEvent():
            return messages.apply_watermark(route, event)
        case AuthorizationRevoked():
            reason = "The account owner removed SNORQ's access; reconnect it."
            return connections.mark_needs_reauth(route.connection_id, reason)
        case PlatformNotice():
            metrics.count(f"platform_notices:{route.platform}")
            log.warning("%s reported %s: %s", route.platform, event.code, event.message)
            return []
    raise TypeError(f"unknown event type {type(event).__name__}")


def _finish(webhook: WebhookEvent, status: str, error: str | None) -> None:
    WebhookEvent.update(status=status, error=error, processed_at=utcnow()).where(
        WebhookEvent.id == webhook.id
    ).execute()
