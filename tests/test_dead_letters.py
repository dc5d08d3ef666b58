"""``snorq dead-letters`` and ``snorq replay``: what failed for good, listed, and run again once."""

import json

import pytest
from click.testing import CliRunner

from app import routing
from app.cli import main
from app.models import Message, WebhookEvent, WebhookStatus
from tests.payloads import payload
from tests.support import signed
from workers import dead_letters, inbound
from workers.broker import INBOUND, MAINTENANCE, OUTBOUND, broker
from workers.inbound import ingest_webhooks

WORKER_QUEUES = (INBOUND, OUTBOUND, MAINTENANCE)
UNKNOWN_PHONE_NUMBER_ID = "999000999"


def snorq(*arguments: str) -> str:
    result = CliRunner().invoke(main, list(arguments))
    assert result.exit_code == 0, result.output
    return result.output


def whatsapp_text(phone_number_id: str | None = None) -> str:
    body = payload("whatsapp", "text")
    if phone_number_id:
        body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = phone_number_id
    data, _ = signed("whatsapp", body)
    return data.decode()


@pytest.fixture
def dead_ingest(worker, connections, monkeypatch):
    """An inbound job that died on its only attempt (the database was "down"); then fixed."""
    real = inbound.process

    def broken(webhook):
        raise RuntimeError(f"database is down (access_token=EAAsecret) {webhook.body[:40]!r}")

    monkeypatch.setattr(inbound, "process", broken)
    delivery = ["delivery-1", "whatsapp", whatsapp_text(), 1767225600.0, "req-1"]
    ingest_webhooks.send_with_options(args=([delivery],), max_retries=0, request_id="req-1")
    worker.drain()
    monkeypatch.setattr(inbound, "process", real)
    return delivery


def test_a_dead_lettered_job_is_listed_with_why_and_without_its_body(dead_ingest):
    [letter] = dead_letters.dead_letters(broker)

    assert (letter.queue, letter.actor, letter.request_id) == (INBOUND, "ingest_webhooks", "req-1")
    assert letter.arguments == "whatsapp delivery delivery-1"
    # The job's arguments are webhook bodies, which an exception's text may quote.
    assert letter.reason == "RuntimeError"
    output = snorq("dead-letters")
    assert letter.message_id in output and "delivery-1" in output
    assert "snorq replay --dead-letters" in output
    assert "Hello" not in output and dead_ingest[2][:30] not in output


def test_a_dead_lettered_job_replays_into_exactly_one_message(dead_ingest):
    [letter] = dead_letters.dead_letters(broker)

    assert (
        snorq("replay", "--job", letter.message_id).strip()
        == "Queued 1 dead-lettered job(s) again."
    )
    assert dead_letters.dead_letters(broker) == []
    assert snorq("replay", "--dead-letters").strip() == "Queued 0 dead-lettered job(s) again."


def test_replayed_job_runs_and_a_second_replay_adds_nothing(dead_ingest, worker):
    dead_letters.replay(broker)
    worker.drain()
    assert Message.select().count() == 1
    assert WebhookEvent.get(WebhookEvent.delivery_id == "delivery-1").status == "PROCESSED"

    snorq("replay", "--event", str(WebhookEvent.get().id))
    assert Message.select().count() == 1


def test_the_reason_of_a_job_with_only_ids_keeps_the_scrubbed_exception_text():
    class Job:
        args = (42,)

    reason = dead_letters._reason(Job(), ValueError("refused: access_token=EAAtoken123 expired"))
    assert reason == "ValueError: refused: access_token=[redacted] expired"


def test_dead_letters_as_json_for_scripts(dead_ingest):
    document = json.loads(snorq("dead-letters", "--json"))
    [letter] = document["dead_letters"]
    assert letter["reason"] == "RuntimeError" and letter["queue"] == INBOUND
    # Its body is stored too, as not processed yet: replaying either is enough.
    [event] = document["webhook_events"]
    assert (event["delivery_id"], event["status"]) == ("delivery-1", WebhookStatus.RECEIVED)


@pytest.fixture
def unrouted(client, worker, connections):
    """A webhook for a WhatsApp number no connection has."""
    body = payload("whatsapp", "text")
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = UNKNOWN_PHONE_NUMBER_ID
    data, headers = signed("whatsapp", body)
    assert client.post("/api/v1/webhooks/whatsapp", data=data, headers=headers).status_code == 200
    worker.drain()
    return WebhookEvent.get()


def test_an_unrouted_event_names_the_account_it_was_for(unrouted):
    output = snorq("dead-letters")

    assert f"unknown account: {UNKNOWN_PHONE_NUMBER_ID}" in output
    assert f"--platform whatsapp --account-id {UNKNOWN_PHONE_NUMBER_ID}" in output
    [event] = json.loads(snorq("dead-letters", "--json"))["webhook_events"]
    assert (event["id"], event["unrouted"]) == (unrouted.id, [UNKNOWN_PHONE_NUMBER_ID])


def test_an_unrouted_event_replays_into_one_message_once_its_account_is_connected(unrouted, org):
    snorq(
        "add-connection",
        "--org",
        str(org.id),
        "--platform",
        "whatsapp",
        "--account-id",
        UNKNOWN_PHONE_NUMBER_ID,
        "--access-token",
        "whatsapp-access-token",
    )
    routing.forget()  # a `snorq replay` is a process of its own, with no cached lookups

    for _ in range(2):
        assert (
            snorq("replay", "--event", str(unrouted.id)).strip() == "Replayed 1 webhook event(s)."
        )
        assert Message.select().count() == 1

    assert WebhookEvent.get_by_id(unrouted.id).status == WebhookStatus.PROCESSED
    assert "Webhook events not processed: 0" in snorq("dead-letters")
