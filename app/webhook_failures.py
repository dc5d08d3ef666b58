"""Stored webhooks that were not processed, who may see them, and processing them again.

A webhook is kept with its outcome (``workers/inbound.py``). Those an operator
must look at are:

- **unrouted**: FAILED because it names an account no connection has — the
  reason names the account ids (``unknown account: <id>, …``); connect the
  account (``snorq add-connection``) and replay it;
- **unparseable**: FAILED because the adapter could not parse it;
- **stuck**: still RECEIVED after the sweep's grace: every attempt failed so far
  (the sweep retries it for a day, then leaves it to a replay).

A webhook belongs to the organizations whose connections it names (read from
its body); an unrouted or unparseable one belongs to none, so only an instance
operator sees it. Replaying is :func:`workers.inbound.process` again: it applies
what was not applied and changes nothing that was.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from app.config import get_settings
from app.db import utcnow
from app.models import PlatformConnection, WebhookEvent, WebhookStatus
from app.platforms import get_platform

#: The most webhooks listed (the latest).
LIST_LIMIT = 500
STUCK_REASON = "not processed yet: every attempt so far failed (see the worker's log)"


@dataclass(frozen=True)
class FailedWebhook:
    """A stored webhook as listed: never its body."""

    id: int
    delivery_id: str
    platform: str
    status: str
    received_at: datetime.datetime
    reason: str
    #: Every account the body names, and those of them no connection has (yet).
    accounts: tuple[str, ...]
    unrouted: tuple[str, ...]
    organization_ids: frozenset[int]


def unprocessed_query():
    """The webhooks not processed: FAILED, or RECEIVED for longer than the sweep's grace."""
    grace = datetime.timedelta(seconds=get_settings().webhook_sweep_grace)
    return WebhookEvent.select().where(
        (WebhookEvent.status == WebhookStatus.FAILED)
        | (
            (WebhookEvent.status == WebhookStatus.RECEIVED)
            & (WebhookEvent.received_at <= utcnow() - grace)
        )
    )


def failed_webhooks(organization_id: int | None = None) -> list[FailedWebhook]:
    """The latest webhooks not processed: all, or those naming this organization's accounts."""
    events = list(unprocessed_query().order_by(WebhookEvent.received_at.desc()).limit(LIST_LIMIT))
    accounts = {event.id: _accounts(event) for event in events}
    owners = _owners({(e.platform, a) for e in events for a in accounts[e.id]})
    found = [_describe(event, accounts[event.id], owners) for event in events]
    if organization_id is None:
        return found
    return [webhook for webhook in found if organization_id in webhook.organization_ids]


def replay_webhooks(ids: Iterable[int], organization_id: int | None = None) -> list[int]:
    """Process these webhooks again (those this organization may see); returns their ids.

    Raises:
      Exception: whatever processing a webhook raised (the others before it are done).
    """
    from workers.inbound import process

    wanted = set(ids)
    visible = {w.id for w in failed_webhooks(organization_id)} if organization_id else wanted
    replayed = []
    for event in WebhookEvent.select().where(WebhookEvent.id.in_(wanted & visible)):
        process(event)
        replayed.append(event.id)
    return sorted(replayed)


def _accounts(event: WebhookEvent) -> tuple[str, ...]:
    """The account ids the body names (none when it cannot be parsed)."""
    try:
        events = get_platform(event.platform).parse(bytes(event.body))
    except Exception:
        return ()
    return tuple(sorted({e.account_id for e in events if e.account_id}))


def _owners(accounts: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The organization connected to each (platform, account id) that has one."""
    owners = {}
    for platform in {platform for platform, _ in accounts}:
        ids = [account for p, account in accounts if p == platform]
        for connection in PlatformConnection.select().where(
            PlatformConnection.platform == platform, PlatformConnection.account_id.in_(ids)
        ):
            owners[(platform, connection.account_id)] = connection.organization_id
    return owners


def _describe(event: WebhookEvent, accounts: tuple[str, ...], owners: dict) -> FailedWebhook:
    routed = {account: owners.get((event.platform, account)) for account in accounts}
    return FailedWebhook(
        id=event.id,
        delivery_id=event.delivery_id,
        platform=event.platform,
        status=event.status,
        received_at=event.received_at,
        reason=event.error or STUCK_REASON,
        accounts=accounts,
        unrouted=tuple(account for account, owner in routed.items() if owner is None),
        organization_ids=frozenset(owner for owner in routed.values() if owner is not None),
    )
