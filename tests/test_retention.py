"""Retention: old processed webhook bodies and old audit entries go, in small batches."""

import datetime

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner

from app import retention
from app.cli import main
from app.config import get_settings
from app.db import database, utcnow
from app.models import AuditLog, WebhookEvent, WebhookStatus
from scheduler.jobs import RETENTION_MINUTES, add_jobs
from workers.retention import prune_stored

DAY = datetime.timedelta(days=1)


def webhook(age: datetime.timedelta, status: str = WebhookStatus.PROCESSED) -> WebhookEvent:
    received = utcnow() - age
    return WebhookEvent.create(
        delivery_id=f"{status}-{age.total_seconds()}-{WebhookEvent.select().count()}",
        platform="whatsapp",
        body=b'{"object": "whatsapp_business_account"}',
        received_at=received,
        processed_at=None if status == WebhookStatus.RECEIVED else received,
        status=status,
    )


def audit_entry(age: datetime.timedelta) -> AuditLog:
    entry = AuditLog.create(platform="whatsapp", action="send", ok=True)
    AuditLog.update(created_at=utcnow() - age).where(AuditLog.id == entry.id).execute()
    return entry


def remaining(model) -> set[int]:
    return {row.id for row in model.select(model.id)}


def test_processed_webhooks_older_than_the_retention_are_deleted_and_recent_ones_kept():
    old = webhook(31 * DAY)
    recent = webhook(29 * DAY)

    prune_stored.fn()

    assert remaining(WebhookEvent) == {recent.id}
    assert old.id not in remaining(WebhookEvent)


@pytest.mark.parametrize("status", [WebhookStatus.FAILED, WebhookStatus.RECEIVED])
def test_a_webhook_never_processed_is_kept_however_old_until_discarded(status):
    kept = webhook(400 * DAY, status)

    prune_stored.fn()
    assert remaining(WebhookEvent) == {kept.id}

    assert retention.discard_webhooks([kept.id, 999_999]) == 1
    assert remaining(WebhookEvent) == set()


def test_a_failed_webhook_replayed_since_goes_with_the_processed_ones():
    failed = webhook(40 * DAY, WebhookStatus.FAILED)
    prune_stored.fn()
    WebhookEvent.update(status=WebhookStatus.PROCESSED).where(
        WebhookEvent.id == failed.id
    ).execute()

    prune_stored.fn()

    assert remaining(WebhookEvent) == set()


def test_audit_entries_have_their_own_retention(monkeypatch):
    monkeypatch.setenv("SNORQ_AUDIT_RETENTION_DAYS", "90")
    get_settings.cache_clear()
    old, recent = audit_entry(91 * DAY), audit_entry(89 * DAY)
    old_webhook = webhook(60 * DAY)

    prune_stored.fn()

    assert remaining(AuditLog) == {recent.id}
    assert old.id not in remaining(AuditLog)
    assert old_webhook.id not in remaining(WebhookEvent)


def test_audit_entries_are_kept_a_year_by_default():
    kept, gone = audit_entry(364 * DAY), audit_entry(366 * DAY)

    prune_stored.fn()

    assert remaining(AuditLog) == {kept.id}
    assert gone.id not in remaining(AuditLog)


def test_a_retention_of_zero_days_keeps_everything(monkeypatch):
    monkeypatch.setenv("SNORQ_WEBHOOK_RETENTION_DAYS", "0")
    monkeypatch.setenv("SNORQ_AUDIT_RETENTION_DAYS", "0")
    get_settings.cache_clear()
    kept = {webhook(1000 * DAY).id}
    entries = {audit_entry(1000 * DAY).id}

    prune_stored.fn()

    assert remaining(WebhookEvent) == kept
    assert remaining(AuditLog) == entries


def test_rows_are_deleted_a_batch_per_statement(monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 2)
    old = [webhook((31 + n) * DAY).id for n in range(5)]
    recent = webhook(DAY).id
    deletes = []
    execute_sql = database.obj.execute_sql

    def counting(sql, params=None):
        if sql.startswith("DELETE"):
            deletes.append(len(params))
        return execute_sql(sql, params)

    monkeypatch.setattr(database.obj, "execute_sql", counting)

    assert retention.prune(retention.expired_webhooks, utcnow(), 30) == len(old)

    assert deletes == [2, 2, 1]
    assert remaining(WebhookEvent) == {recent}


def test_the_oldest_go_first():
    ages = [35, 31, 50, 33]
    made = {age: webhook(age * DAY).id for age in ages}
    cutoff = utcnow() - 30 * DAY

    batch = [row.id for row in retention.expired_webhooks(cutoff).limit(2)]

    assert batch == [made[50], made[35]]


def test_discard_webhooks_deletes_the_named_events_from_the_command_line():
    failed = [webhook(DAY, WebhookStatus.FAILED).id for _ in range(2)]
    other = webhook(DAY, WebhookStatus.FAILED).id

    result = CliRunner().invoke(main, ["discard-webhooks", *map(str, failed)])

    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "Discarded 2 webhook event(s)."
    assert remaining(WebhookEvent) == {other}


def test_the_clock_runs_retention_every_quarter_hour_on_the_minute():
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler)
    job = scheduler.get_job("retention")
    assert str(job.trigger) == f"cron[minute='*/{RETENTION_MINUTES}']"
    assert job.args == ("retention", RETENTION_MINUTES, prune_stored.send)
