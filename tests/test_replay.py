"""``snorq replay``: stored webhook events processed again, changing nothing already applied."""

import datetime

import pytest
from click.testing import CliRunner

from app import live, routing
from app.cli import main
from app.models import (
    ConnectionStatus,
    Conversation,
    Message,
    PlatformConnection,
    WebhookEvent,
    WebhookStatus,
)
from tests.fixtures import make_connection
from tests.payloads import payload
from tests.support import meta_headers, signed
from workers.broker import INBOUND, OUTBOUND

UNKNOWN_PHONE_NUMBER_ID = "999000999"
#: The files of these webhooks are not fetched here (tests/test_media_fetch.py does), nor
#: the customers' profiles (tests/test_profiles.py: the platforms do not answer here).
WORKER_QUEUES = (INBOUND, OUTBOUND)


def deliver(client, worker, platform: str, *bodies) -> None:
    for body in bodies:
        body = payload(platform, body) if isinstance(body, str) else body
        data, headers = signed(platform, body)
        assert (
            client.post(f"/api/v1/webhooks/{platform}", data=data, headers=headers).status_code
            == 200
        )
        worker.drain()


def replay(*options: str) -> str:
    result = CliRunner().invoke(main, ["replay", *options])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def state() -> tuple:
    """Everything a replay must leave as it was."""
    rows = [
        (m.id, m.external_id, m.status, m.content, m.delivered_at, m.read_at)
        for m in Message.select().order_by(Message.id)
    ]
    conversations = [
        (c.id, c.unread_count, c.last_message_preview, c.last_message_at)
        for c in Conversation.select().order_by(Conversation.id)
    ]
    return rows, conversations


def for_unknown_account(event: str) -> dict:
    body = payload("whatsapp", event)
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = UNKNOWN_PHONE_NUMBER_ID
    return body


@pytest.fixture
def history(client, worker, connections, org):
    """A conversation with messages, a reply with statuses, and one event that failed."""
    deliver(client, worker, "whatsapp", "text", "image", "reaction")
    deliver(client, worker, "facebook", "message", "postback")
    deliver(client, worker, "whatsapp", for_unknown_account("location"))
    return org


def test_replaying_everything_changes_nothing_already_applied(history):
    before, events_before = state(), live.latest_seq(history.id)

    assert replay() == "Replayed 6 webhook event(s)."
    assert replay() == "Replayed 6 webhook event(s)."

    assert state() == before
    assert live.latest_seq(history.id) == events_before


def test_replaying_failed_events_applies_an_account_connected_since(history):
    make_connection(history, "whatsapp", UNKNOWN_PHONE_NUMBER_ID)
    routing.forget()  # a `snorq replay` is a process of its own, with no cached lookups

    assert replay("--failed") == "Replayed 1 webhook event(s)."

    assert Message.select().where(Message.content == "[Location: 48.8539, 2.3336]").count() == 1
    assert not WebhookEvent.select().where(WebhookEvent.status == WebhookStatus.FAILED).exists()
    assert replay("--failed") == "Replayed 0 webhook event(s)."


def test_replaying_failed_events_leaves_the_processed_ones_alone(history):
    processed = {
        w.id: w.processed_at
        for w in WebhookEvent.select().where(WebhookEvent.status == "PROCESSED")
    }
    assert replay("--failed") == "Replayed 1 webhook event(s)."
    after = {
        w.id: w.processed_at
        for w in WebhookEvent.select().where(WebhookEvent.status == "PROCESSED")
    }
    assert after == processed
    assert (
        WebhookEvent.get(WebhookEvent.status == "FAILED").error
        == f"unknown account: {UNKNOWN_PHONE_NUMBER_ID}"
    )


def test_replaying_since_a_time_takes_only_the_events_received_since(history):
    cutoff = datetime.datetime(2026, 6, 1)
    old = list(WebhookEvent.select().order_by(WebhookEvent.id).limit(4))
    WebhookEvent.update(received_at=cutoff - datetime.timedelta(days=1)).where(
        WebhookEvent.id.in_([w.id for w in old])
    ).execute()
    before = state()

    assert replay("--since", "2026-06-01") == "Replayed 2 webhook event(s)."
    assert replay("--failed", "--since", "2026-06-01") == "Replayed 1 webhook event(s)."
    assert state() == before


def test_replaying_a_malformed_body_keeps_it_failed_with_its_error(client, worker, connections):
    body = (
        b'{"object":"page","entry":[{"id":"1234567890","messaging":[{"sender":{"id":"678"},'
        b'"recipient":{"id":"1234567890"},"timestamp":1767225600000,"message":{"text":"Hi"}}]}]}'
    )
    client.post("/api/v1/webhooks/facebook", data=body, headers=meta_headers("facebook", body))
    worker.drain()
    [webhook] = WebhookEvent.select()
    assert webhook.status == WebhookStatus.FAILED

    assert replay("--failed") == "Replayed 1 webhook event(s)."

    assert WebhookEvent.get_by_id(webhook.id).error == webhook.error
    assert webhook.error == "malformed payload: body.entry[0].messaging[0].message.mid is missing"


def test_replaying_an_old_authorization_removal_after_a_reconnect_keeps_the_connection(
    client, worker, connections
):
    deliver(client, worker, "tiktok", "authorization_removed")
    tiktok = PlatformConnection.get_by_id(connections["tiktok"].id)
    assert tiktok.status == ConnectionStatus.NEEDS_REAUTH
    tiktok.status = ConnectionStatus.ACTIVE
    tiktok.updated_at = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    tiktok.save()

    replay()

    assert PlatformConnection.get_by_id(tiktok.id).status == ConnectionStatus.ACTIVE


def test_replaying_failed_events_reaches_every_one_of_them(client, worker, org):
    for number in range(5):
        body = for_unknown_account("text")
        body["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.LATE{number}"
        deliver(client, worker, "whatsapp", body)
    make_connection(org, "whatsapp", UNKNOWN_PHONE_NUMBER_ID)
    routing.forget()

    assert replay("--failed") == "Replayed 5 webhook event(s)."

    assert Message.select().count() == 5
    assert not WebhookEvent.select().where(WebhookEvent.status == WebhookStatus.FAILED).exists()
