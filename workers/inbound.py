"""Inbound: parse each webhook body, apply its events, store it, publish what changed.

A job carries a group of deliveries (see ``app/web/intake.py``). Each body is
applied in the transaction that also stores it, exactly as received, with the
outcome; a group's bodies share one transaction (one commit for the job), and if
one of them fails, each is applied in a transaction of its own instead. If anything
fails then, the body is stored on its own (RECEIVED) before the job is retried, so
nothing is lost: should the retry be lost too, the clock's sweep processes the body
again (:func:`sweep_webhooks`). A body the adapter cannot parse is kept with its
error and never retried. Running a job twice changes nothing: bodies are keyed by
delivery id and every event is applied idempotently. Live events go out once the
transaction that made them committed.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

import dramatiq
from redis import RedisError

from app import connections, logs, messages, metrics, routing
from app.config import get_settings
from app.db import utcnow
from app.messages import Notice
from app.models import PlatformConnection, WebhookEvent, WebhookStatus
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
from app.statements import Statement
from workers import media
from workers.broker import INBOUND, MAINTENANCE

log = logging.getLogger(__name__)

#: A webhook still RECEIVED this long after it arrived is left to `snorq replay`.
SWEEP_GIVE_UP = datetime.timedelta(hours=24)
#: The most webhooks one sweep processes (the oldest first).
SWEEP_BATCH = 500


@dramatiq.actor(queue_name=INBOUND, max_retries=20, max_backoff=300_000, time_limit=120_000)
def ingest_webhooks(deliveries: list[list]) -> None:
    """Process ``[delivery_id, platform, body, received_at, request_id]`` deliveries, in order.

    Each is processed with its own request id (jobs queued before there were
    request ids have none: their deliveries keep the job's).
    """
    job_request_id = logs.request_id.get()
    received = [
        (
            WebhookEvent(
                delivery_id=delivery_id,
                platform=platform,
                body=body.encode("utf-8", "surrogateescape"),
                received_at=_naive_utc(received_at),
            ),
            (request_id[0] if request_id else None) or job_request_id,
        )
        for delivery_id, platform, body, received_at, *request_id in deliveries
    ]
    if len(received) > 1 and _process_together(received):
        return
    for number, (webhook, request_id) in enumerate(received):
        try:
            with logs.request_context(request_id):
                process(webhook)
            _observe_lag(webhook)
        except Exception:
            # Whatever failed, this body and the rest of the group stay: for the retry,
            # the sweep and `snorq replay`.
            rows = [rest.__data__ for rest, _ in received[number:]]
            WebhookEvent.insert_many(rows).on_conflict_ignore().execute()
            raise


def _naive_utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Stored:
    """What applying one webhook changed, for the steps that wait for its commit."""

    notices: list[Notice]
    error: str | None
    unknown: set[str]
    texts: list[str]


def process(webhook: WebhookEvent) -> None:
    """Parse a body and apply its events, storing it with how that went, in one transaction.

    One commit per webhook keeps the worker fast; a webhook that cannot be parsed is
    stored FAILED with the reason and is not tried again (it would fail the same way).
    """
    parsed = _parse(webhook)
    with messages.transaction():
        stored = _store(webhook, *parsed)
    _after_commit([(webhook, stored, logs.request_id.get())])


def _process_together(received: list[tuple[WebhookEvent, str | None]]) -> bool:
    """Apply a job's webhooks in one transaction: one commit for the whole group.

    Returns:
      False, with nothing kept, when one of them failed: each is then processed on
      its own, so the others are not held back by it.
    """
    parsed = [_parse(webhook) for webhook, _ in received]
    try:
        with messages.transaction():
            stored = []
            for (webhook, request_id), (events, error) in zip(received, parsed, strict=True):
                with logs.request_context(request_id):
                    stored.append(_store(webhook, events, error))
    except Exception:
        return False
    _after_commit(
        [
            (webhook, outcome, request_id)
            for (webhook, request_id), outcome in zip(received, stored, strict=True)
        ]
    )
    for webhook, _ in received:
        _observe_lag(webhook)
    return True


def _store(webhook: WebhookEvent, events: list[Event], error: str | None) -> Stored:
    """Apply the body's events and store it with its outcome, in the caller's transaction."""
    texts = _customer_texts(events)
    with logs.concealing(texts):
        notices, unknown = _apply(webhook, events)
        if unknown:
            error = "unknown account: " + ", ".join(sorted(unknown))
        _save(webhook, error)
    return Stored(notices, error, unknown, texts)


def _after_commit(committed: list[tuple[WebhookEvent, Stored, str | None]]) -> None:
    """Publish what the webhooks changed, queue what they call for, report what failed.

    ``committed`` holds each webhook with what storing it changed and its request id;
    their live events go out together, in one call to Redis.
    """
    texts = [text for _, stored, _ in committed for text in stored.texts]
    with logs.concealing(texts):
        try:
            messages.publish([notice for _, stored, _ in committed for notice in stored.notices])
        except RedisError as failure:
            # Stored already: a retry would apply and publish nothing, and the job's other
            # webhooks would wait for it (and be lost with it if it cannot be queued).
            log.warning(
                "Webhook(s) %s stored; their live events were not published (%s)",
                ", ".join(webhook.delivery_id for webhook, _, _ in committed),
                type(failure).__name__,
            )
        for webhook, stored, request_id in committed:
            with logs.request_context(request_id):
                media.after_ingest(stored.notices)
                _report(webhook, stored.error, stored.unknown)


def _customer_texts(events: list[Event]) -> list[str]:
    """What customers wrote in these events: never to be logged, whatever goes wrong."""
    return [event.content for event in events if isinstance(event, MessageEvent)]


@dramatiq.actor(queue_name=MAINTENANCE, max_retries=0, time_limit=600_000)
def sweep_webhooks() -> None:
    """Process the webhooks left RECEIVED again (the clock queues this every minute).

    A body is stored RECEIVED only when an attempt failed; its job's retry normally
    processes it. This takes up the webhooks whose retry never came: it could not be
    enqueued (Redis was down), or the job ran out of retries. A body that keeps failing
    is tried at every sweep, for a day.
    """
    now = utcnow()
    grace = datetime.timedelta(seconds=get_settings().webhook_sweep_grace)
    stuck = list(
        WebhookEvent.select()
        .where(
            WebhookEvent.status == WebhookStatus.RECEIVED,
            WebhookEvent.received_at <= now - grace,
            WebhookEvent.received_at > now - SWEEP_GIVE_UP,
        )
        .order_by(WebhookEvent.received_at)
        .limit(SWEEP_BATCH)
    )
    processed = 0
    for webhook in stuck:
        try:
            process(webhook)
            _observe_lag(webhook)
        except Exception as error:
            log.warning(
                "Webhook %s is still not processed (%s)", webhook.delivery_id, type(error).__name__
            )
        else:
            processed += 1
    if processed:
        log.warning("Processed %d webhook(s) whose job was lost", processed)


def _observe_lag(webhook: WebhookEvent) -> None:
    """Count how long the webhook took from the web process to a commit (not for replays)."""
    lag = (utcnow() - webhook.received_at).total_seconds()
    metrics.INGEST_LAG_SECONDS.labels(webhook.platform).observe(max(0.0, lag))


def _parse(webhook: WebhookEvent) -> tuple[list[Event], str | None]:
    """The body's events, or why there are none."""
    try:
        return get_platform(webhook.platform).parse(bytes(webhook.body)), None
    except ParseError as error:
        return [], f"malformed payload: {error}"
    except Exception as error:
        # Parsing is pure: a parser failure would fail every retry too, so keep it instead.
        # Only the type is recorded, as an exception's text may quote the payload.
        return [], f"the parser failed ({type(error).__name__})"


def _apply(webhook: WebhookEvent, events: list[Event]) -> tuple[list[Notice], set[str]]:
    """Apply the events of the accounts SNORQ has; returns what changed, and the others."""
    notices: list[Notice] = []
    unknown = set()
    for event in events:
        route = routing.route(webhook.platform, event.account_id)
        if route is None:
            unknown.add(event.account_id)
        else:
            notices += _changes(route, event, webhook.received_at)
    return notices, unknown


def _save(webhook: WebhookEvent, error: str | None) -> None:
    """Store the webhook with its outcome (over what an earlier attempt stored)."""
    values = {f.name: f.db_value(webhook.__data__.get(f.name)) for f in _WEBHOOK_FIELDS}
    values.update(
        status=WebhookStatus.FAILED if error else WebhookStatus.PROCESSED,
        error=error,
        processed_at=utcnow(),
    )
    # Nothing reads its result: on PostgreSQL it goes with the COMMIT.
    _SAVE.execute_later(**values)


_WEBHOOK_FIELDS = [f for f in WebhookEvent._meta.sorted_fields if f is not WebhookEvent.id]

_SAVE = Statement(
    lambda param: WebhookEvent.insert({f: param(f.name) for f in _WEBHOOK_FIELDS}).on_conflict(
        conflict_target=[WebhookEvent.delivery_id],
        update={
            f: param(f.name)
            for f in (WebhookEvent.status, WebhookEvent.error, WebhookEvent.processed_at)
        },
    )
)


def _report(webhook: WebhookEvent, error: str | None, unknown: set[str]) -> None:
    """Count and log what went wrong (never the body: it may hold customer text)."""
    if unknown:
        metrics.WEBHOOKS_UNPROCESSED.labels(webhook.platform, "unknown_account").inc()
        log.warning(
            "Webhook %s names %s account(s) no connection has: %s; their events were not stored",
            webhook.delivery_id,
            webhook.platform,
            ", ".join(sorted(unknown)),
        )
    elif error:
        metrics.WEBHOOKS_UNPROCESSED.labels(webhook.platform, "parse_error").inc()
        log.warning(
            "Webhook %s from %s was not processed: %s", webhook.delivery_id, webhook.platform, error
        )


def _changes(route: routing.Route, event: Event, received_at: datetime.datetime) -> list[Notice]:
    match event:
        case MessageEvent():
            return messages.record_message(route, event)
        case StatusEvent():
            return messages.apply_status(route, event)
        case WatermarkEvent():
            return messages.apply_watermark(route, event)
        case AuthorizationRevoked():
            return _revoke(route, event, received_at)
        case PlatformNotice():
            # The code says what happened; the platform's text stays in the stored body.
            metrics.PLATFORM_NOTICES.labels(route.platform).inc()
            log.warning(
                "%s reported error %s for account %s", route.platform, event.code, event.account_id
            )
            return []
    raise TypeError(f"unknown event type {type(event).__name__}")


def _revoke(
    route: routing.Route, event: AuthorizationRevoked, received_at: datetime.datetime
) -> list[Notice]:
    """Ask for a reconnect, unless the connection changed since (a replay, a reconnect)."""
    changed_since = (
        PlatformConnection.select(PlatformConnection.id)
        .where(
            PlatformConnection.id == route.connection_id,
            PlatformConnection.updated_at > received_at,
        )
        .exists()
    )
    if changed_since:
        return []
    reason = "The account owner removed SNORQ's access; reconnect it."
    if event.reason:
        reason += f" ({route.platform}: {event.reason})"
    return connections.mark_needs_reauth(route.connection_id, reason)
