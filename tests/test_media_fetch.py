"""Files customers send: stored PENDING at once, fetched on the media queue the way each
platform requires, checked, kept, and shown live; faked at the HTTP level."""

import datetime
import json

import pytest
import responses
from redis import RedisError

from app import live
from app.config import get_settings
from app.db import utcnow
from app.models import Attachment, AttachmentStatus, AuditLog, Message, WebhookEvent
from app.platforms.facebook import Facebook
from tests.media_fakes import (
    EXE,
    HTML,
    JPEG,
    MESSENGER_FILE_LINK,
    PDF,
    PNG,
    TIKTOK_DOWNLOAD,
    TIKTOK_IMAGE_ID,
    WHATSAPP_IMAGE_ID,
    WHATSAPP_IMAGE_LINK,
    deliver,
    fresh_link,
    inbound_worker,  # noqa: F401  (the ingest_only fixture)
    lookup_url,
    media_storage,  # noqa: F401  (the storage fixture)
    queued_fetches,
    tiktok_download,
    tiktok_link,
    whatsapp_lookup,
    without_link,
)
from tests.payloads import payload
from tests.platform_fakes import (
    fast_retries,  # noqa: F401  (a fixture)
    graph_error,
    tiktok_answer,
)
from workers import media
from workers.broker import INBOUND, MEDIA

pytestmark = pytest.mark.usefixtures("storage", "connections")
#: Profiles (maintenance queue) are tests/test_profiles.py's.
WORKER_QUEUES = (INBOUND, MEDIA)


def only_attachment() -> Attachment:
    [attachment] = Attachment.select()
    return attachment


def attachment_events(org) -> list[dict]:
    events, _ = live.events_since(org.id, 0)
    return [event["data"] for event in events if event["type"] == "attachment:status"]


# -- WhatsApp: media id → five-minute link → download with the bearer token ----------


@responses.activate
def test_a_whatsapp_picture_is_looked_up_by_id_and_downloaded_with_the_token(
    client, worker, org, storage
):
    link = fresh_link(WHATSAPP_IMAGE_ID)
    responses.get(
        lookup_url(WHATSAPP_IMAGE_ID),
        json=whatsapp_lookup(WHATSAPP_IMAGE_ID, link, "image/jpeg", JPEG),
    )
    responses.get(link, body=JPEG, content_type="image/jpeg")

    deliver(client, worker, "whatsapp", without_link(payload("whatsapp", "image")))

    lookup, download = responses.calls
    for call in (lookup, download):
        assert call.request.headers["Authorization"] == "Bearer whatsapp-access-token"
    attachment = only_attachment()
    assert attachment.status == AttachmentStatus.AVAILABLE
    assert (attachment.mime_type, attachment.size) == ("image/jpeg", len(JPEG))
    assert attachment.filename == "image.jpg"
    assert storage.read(attachment.storage_key) == JPEG


@pytest.mark.parametrize("expired", [401, 403, 404])
@responses.activate
def test_an_expired_whatsapp_link_is_looked_up_again_in_the_same_attempt(
    client, worker, expired, storage
):
    link = fresh_link(WHATSAPP_IMAGE_ID)
    responses.get(WHATSAPP_IMAGE_LINK, status=expired)
    responses.get(
        lookup_url(WHATSAPP_IMAGE_ID),
        json=whatsapp_lookup(WHATSAPP_IMAGE_ID, link, "image/jpeg", JPEG),
    )
    responses.get(link, body=JPEG)

    deliver(client, worker, "whatsapp", "image")

    assert [call.request.url for call in responses.calls] == [
        WHATSAPP_IMAGE_LINK,
        lookup_url(WHATSAPP_IMAGE_ID),
        link,
    ]
    assert only_attachment().status == AttachmentStatus.AVAILABLE


@responses.activate
def test_a_link_that_expired_between_lookup_and_download_is_looked_up_once_more(
    client, worker, storage
):
    first, second = fresh_link(WHATSAPP_IMAGE_ID, 1), fresh_link(WHATSAPP_IMAGE_ID, 2)
    lookup = lookup_url(WHATSAPP_IMAGE_ID)
    responses.get(lookup, json=whatsapp_lookup(WHATSAPP_IMAGE_ID, first, "image/jpeg", JPEG))
    responses.get(lookup, json=whatsapp_lookup(WHATSAPP_IMAGE_ID, second, "image/jpeg", JPEG))
    responses.get(first, status=404)
    responses.get(second, body=JPEG)

    deliver(client, worker, "whatsapp", without_link(payload("whatsapp", "image")))

    assert [call.request.url for call in responses.calls] == [lookup, first, lookup, second]
    assert storage.read(only_attachment().storage_key) == JPEG


# -- Messenger: the attachment's own link; TikTok: the Business Messaging download call --


@responses.activate
def test_a_messenger_file_comes_from_its_attachment_link_without_a_token(client, worker, storage):
    responses.get(MESSENGER_FILE_LINK, body=PDF, content_type="application/pdf")

    deliver(client, worker, "facebook", "message_file")

    (call,) = responses.calls
    assert "Authorization" not in call.request.headers
    attachment = only_attachment()
    assert (attachment.status, attachment.kind) == (AttachmentStatus.AVAILABLE, "document")
    assert (attachment.mime_type, attachment.filename) == ("application/pdf", "Devis_Été.pdf")
    assert storage.read(attachment.storage_key) == PDF


@responses.activate
def test_a_tiktok_picture_comes_through_the_media_download_call(client, worker, storage):
    link = tiktok_link()
    responses.post(TIKTOK_DOWNLOAD, json=tiktok_download(link))
    responses.get(link, body=PNG, content_type="image/png")

    deliver(client, worker, "tiktok", "im_receive_msg_image")

    asked, downloaded = responses.calls
    assert asked.request.headers["Access-Token"] == "tiktok-access-token"
    assert json.loads(asked.request.body) == {
        "business_id": "7312345678901",
        "conversation_id": "0:1:7312345678901:7299887766554433221",
        "message_id": "7412345678901234568",
        "media_id": TIKTOK_IMAGE_ID,
        "media_type": "IMAGE",
    }
    assert "Access-Token" not in downloaded.request.headers
    attachment = only_attachment()
    assert (attachment.status, attachment.mime_type) == (AttachmentStatus.AVAILABLE, "image/png")
    assert storage.read(attachment.storage_key) == PNG


@responses.activate
def test_a_tiktok_link_that_expired_is_asked_for_again(client, worker, storage):
    first, second = tiktok_link(1), tiktok_link(2)
    responses.post(TIKTOK_DOWNLOAD, json=tiktok_download(first))
    responses.post(TIKTOK_DOWNLOAD, json=tiktok_download(second))
    responses.get(first, status=403)
    responses.get(second, body=PNG)

    deliver(client, worker, "tiktok", "im_receive_msg_image")

    assert only_attachment().status == AttachmentStatus.AVAILABLE


@responses.activate
def test_a_file_tiktok_no_longer_has_fails_at_once_with_its_reason(client, worker, org):
    responses.post(
        TIKTOK_DOWNLOAD, json=tiktok_answer(code=40007, message="media_id does not exist")
    )

    deliver(client, worker, "tiktok", "im_receive_msg_image")

    attachment = only_attachment()
    assert attachment.status == AttachmentStatus.FAILED
    assert "40007" in attachment.error
    assert len(responses.calls) == 1


# -- live: the page shows the file without a reload ---------------------------------------


@responses.activate
def test_staff_pages_hear_of_the_message_at_once_and_of_its_file_when_it_is_kept(
    client, worker, org
):
    responses.get(WHATSAPP_IMAGE_LINK, body=JPEG)

    deliver(client, worker, "whatsapp", "image")

    events, _ = live.events_since(org.id, 0)
    kinds = [event["type"] for event in events]
    assert kinds.index("new:message") < kinds.index("attachment:status")
    new = next(e["data"] for e in events if e["type"] == "new:message")
    [placeholder] = new["message"]["attachments"]
    assert (placeholder["status"], placeholder["url"]) == ("PENDING", None)
    [settled] = attachment_events(org)
    message = Message.get()
    assert settled["message_id"] == message.id
    assert settled["conversation_id"] == message.conversation_id
    assert settled["attachment"]["status"] == "AVAILABLE"
    assert settled["attachment"]["url"] == f"/api/v1/attachments/{placeholder['id']}"


# -- retries: a transient failure is retried; the last attempt fails with a reason -----------


@pytest.mark.usefixtures("fast_retries")
@responses.activate
def test_a_brief_outage_is_retried_until_the_file_arrives(client, worker, storage):
    lookup = lookup_url(WHATSAPP_IMAGE_ID)
    link = fresh_link(WHATSAPP_IMAGE_ID)
    responses.get(lookup, status=503, json=graph_error(2, "Service temporarily unavailable"))
    responses.get(lookup, status=500)
    responses.get(lookup, json=whatsapp_lookup(WHATSAPP_IMAGE_ID, link, "image/jpeg", JPEG))
    responses.get(link, body=JPEG)

    deliver(client, worker, "whatsapp", without_link(payload("whatsapp", "image")))

    assert only_attachment().status == AttachmentStatus.AVAILABLE
    assert len(responses.calls) == 4


@pytest.mark.usefixtures("fast_retries")
@responses.activate
def test_a_platform_that_stays_down_leaves_the_attachment_failed_after_its_retries(
    client, worker, org
):
    lookup = lookup_url(WHATSAPP_IMAGE_ID)
    responses.get(lookup, status=503, json=graph_error(2, "Service temporarily unavailable"))

    deliver(client, worker, "whatsapp", without_link(payload("whatsapp", "image")))

    attachment = only_attachment()
    assert attachment.status == AttachmentStatus.FAILED
    assert attachment.error.endswith(f"(gave up after {media.MAX_RETRIES + 1} attempts)")
    assert len(responses.calls) == media.MAX_RETRIES + 1
    [settled] = attachment_events(org)
    assert settled["attachment"]["error"] == attachment.error
    assert not AuditLog.select().where(AuditLog.ok).exists()


@pytest.mark.usefixtures("fast_retries")
@responses.activate
def test_a_download_that_breaks_off_is_tried_again(client, worker, storage):
    responses.get(WHATSAPP_IMAGE_LINK, body=ConnectionResetError("reset by peer"))
    responses.get(WHATSAPP_IMAGE_LINK, body=JPEG)

    deliver(client, worker, "whatsapp", "image")

    assert storage.read(only_attachment().storage_key) == JPEG


# -- what is refused: too large, or not what it says it is ---------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "streamed"])
@responses.activate
def test_a_file_over_the_size_limit_is_refused_and_not_kept(
    client, worker, monkeypatch, storage, declared
):
    monkeypatch.setenv("SNORQ_MEDIA_MAX_BYTES", "1000")
    get_settings.cache_clear()
    headers = {"Content-Length": "5000"} if declared else {}
    responses.get(WHATSAPP_IMAGE_LINK, body=JPEG + bytes(5000 - len(JPEG)), headers=headers)

    deliver(client, worker, "whatsapp", "image")

    attachment = only_attachment()
    assert attachment.status == AttachmentStatus.FAILED
    assert attachment.storage_key is None
    has = "has 5000 bytes" if declared else "is larger than 1000 bytes"
    assert attachment.error == f"The file {has}; SNORQ keeps at most 1000."
    assert not (storage.root / "attachments").exists()


@responses.activate
def test_the_platform_s_own_limit_applies_too(client, worker, monkeypatch):
    monkeypatch.setattr(Facebook, "max_media_bytes", len(PDF) - 1)
    responses.get(MESSENGER_FILE_LINK, body=PDF)

    deliver(client, worker, "facebook", "message_file")

    assert only_attachment().status == AttachmentStatus.FAILED


@pytest.mark.parametrize(
    ("event", "link", "body", "reason"),
    [
        ("image", WHATSAPP_IMAGE_LINK, HTML, "does not keep files of type text/html"),
        ("image", WHATSAPP_IMAGE_LINK, PDF, "application/pdf, not the image"),
        ("message_file", MESSENGER_FILE_LINK, EXE, "application/x-msdownload"),
    ],
    ids=["web page as picture", "document as picture", "program as document"],
)
@responses.activate
def test_a_file_that_is_not_what_it_claims_or_could_run_is_refused(
    client, worker, storage, event, link, body, reason
):
    responses.get(link, body=body, content_type="image/jpeg")
    platform = "whatsapp" if event == "image" else "facebook"

    deliver(client, worker, platform, event)

    attachment = only_attachment()
    assert attachment.status == AttachmentStatus.FAILED
    assert reason in attachment.error
    assert not (storage.root / "attachments").exists()


@responses.activate
def test_the_stored_type_is_what_the_bytes_show_not_what_was_declared(client, worker):
    responses.get(WHATSAPP_IMAGE_LINK, body=PNG, content_type="image/jpeg")

    deliver(client, worker, "whatsapp", "image")

    attachment = only_attachment()
    assert (attachment.mime_type, attachment.filename) == ("image/png", "image.png")


# -- ingest never waits for media; nothing stays PENDING forever ----------------------------


def test_ingest_stores_the_message_at_once_and_leaves_the_fetch_to_the_media_queue(
    client, ingest_only
):
    deliver(client, ingest_only, "whatsapp", "image")
    deliver(client, ingest_only, "whatsapp", "text")

    assert Message.select().count() == 2
    attachment = only_attachment()
    assert attachment.status == AttachmentStatus.PENDING
    assert queued_fetches() == [attachment.id]


def test_a_broker_down_after_ingest_leaves_the_fetch_to_the_sweep(client, worker, monkeypatch):
    def down(*args, **kwargs):
        raise RedisError("connection refused")

    monkeypatch.setattr(media.fetch_attachment, "send", down)
    deliver(client, worker, "whatsapp", "image")

    assert WebhookEvent.get().status == "PROCESSED"
    assert only_attachment().status == AttachmentStatus.PENDING
    monkeypatch.undo()

    Attachment.update(updated_at=utcnow() - media.SWEEP_GRACE).execute()
    with responses.RequestsMock() as fake:
        fake.get(WHATSAPP_IMAGE_LINK, body=JPEG)
        media.sweep_media.fn()
        worker.drain()

    assert only_attachment().status == AttachmentStatus.AVAILABLE


def test_the_sweep_gives_up_on_an_attachment_pending_for_a_day(client, org, ingest_only):
    deliver(client, ingest_only, "whatsapp", "image")
    day_ago = utcnow() - media.GIVE_UP_AFTER - datetime.timedelta(minutes=1)
    Attachment.update(created_at=day_ago, updated_at=day_ago).execute()

    media.sweep_media.fn()

    attachment = only_attachment()
    assert attachment.status == AttachmentStatus.FAILED
    assert attachment.error == "SNORQ could not fetch this file within 24 hours."
    assert attachment_events(org)[0]["attachment"]["status"] == "FAILED"


def test_the_sweep_leaves_a_fetch_still_waiting_in_its_queue_alone(client, ingest_only):
    deliver(client, ingest_only, "whatsapp", "image")

    media.sweep_media.fn()

    assert queued_fetches() == [only_attachment().id]
    assert only_attachment().status == AttachmentStatus.PENDING


@responses.activate
def test_fetching_an_attachment_twice_downloads_and_keeps_it_once(client, worker, org):
    responses.get(WHATSAPP_IMAGE_LINK, body=JPEG)
    deliver(client, worker, "whatsapp", "image")

    media.fetch_attachment.send(only_attachment().id)
    worker.drain()

    assert len(responses.calls) == 1
    assert len(attachment_events(org)) == 1
    audit = AuditLog.get(AuditLog.action == "media_fetch")
    detail = f"attachment {only_attachment().id}: {len(JPEG)} bytes"
    assert (audit.ok, audit.detail) == (True, detail)
