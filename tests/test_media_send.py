"""Replies carrying a file, sent the way each platform takes one: WhatsApp media upload
then a media message, Messenger's Attachment Upload API then the attachment, TikTok's
image upload then an IMAGE message. Faked at the HTTP level in the platforms' shapes."""

import io
import json
from email.parser import BytesParser
from email.policy import default

import pytest
import requests
import responses

from app.models import Attachment, Message, MessageStatus
from app.platforms.errors import ErrorCode
from app.storage import get_storage
from tests.media_fakes import (
    PDF,
    PNG,
    media_storage,  # noqa: F401  (the storage fixture)
)
from tests.platform_fakes import (
    GRAPH,
    SEND_URLS,
    TIKTOK,
    TIKTOK_THREAD,
    conversation,
    fast_retries,  # noqa: F401  (a fixture)
    graph_error,
    messenger_sent,
    reload,
    sent_json,
    tiktok_answer,
    tiktok_sent,
    whatsapp_sent,
)
from workers.broker import OUTBOUND

pytestmark = pytest.mark.usefixtures("storage")
WORKER_QUEUES = (OUTBOUND,)

UPLOAD_URLS = {
    "whatsapp": f"{GRAPH}/106540352242922/media",
    "facebook": f"{GRAPH}/1234567890/message_attachments",
    "tiktok": f"{TIKTOK}/business/message/media/upload/",
}
UPLOADED = {
    "whatsapp": {"id": "2731547013760101"},
    "facebook": {"attachment_id": "1857777774821032"},
    "tiktok": tiktok_answer({"media_id": "v0f044gc0000d1e2f3a4b5c6d7e8f9g"}),
}


def reply_with_file(client, headers, thread, data=PNG, name="stain.png", mime="image/png", **form):
    response = client.post(
        f"/api/v1/conversations/{thread.id}/messages",
        data={"file": (io.BytesIO(data), name, mime), **form},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_json()
    return Message.get_by_id(response.get_json()["message"]["id"])


def multipart(call) -> dict[str, tuple]:
    """Each form field of a multipart request: ``(file name, type, bytes)``."""
    head = f"Content-Type: {call.request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=default).parsebytes(head + call.request.body)
    return {
        part.get_param("name", header="content-disposition"): (
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    }


@pytest.fixture
def threads(org, connections):
    return {name: conversation(org, connection) for name, connection in connections.items()}


# -- each platform's way ---------------------------------------------------------------------


@responses.activate
def test_whatsapp_uploads_the_file_then_sends_its_media_id_with_the_caption(
    client, worker, api_headers, threads
):
    responses.post(UPLOAD_URLS["whatsapp"], json=UPLOADED["whatsapp"])
    responses.post(SEND_URLS["whatsapp"], json=whatsapp_sent("wamid.IMG"))

    message = reply_with_file(client, api_headers, threads["whatsapp"], content="Voilà 📦")
    worker.drain()

    upload, send = responses.calls
    assert upload.request.headers["Authorization"] == "Bearer whatsapp-access-token"
    fields = multipart(upload)
    assert fields["messaging_product"][2] == b"whatsapp"
    assert fields["type"][2] == b"image/png"
    assert fields["file"] == ("stain.png", "image/png", PNG)
    assert sent_json(send) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "biz_opaque_callback_data": f"snorq:{message.id}",
        "type": "image",
        "image": {"id": "2731547013760101", "caption": "Voilà 📦"},
    }
    sent = reload(message)
    assert (sent.status, sent.external_id) == (MessageStatus.SENT, "wamid.IMG")


@responses.activate
def test_a_whatsapp_document_goes_with_its_file_name(client, worker, api_headers, threads):
    responses.post(UPLOAD_URLS["whatsapp"], json=UPLOADED["whatsapp"])
    responses.post(SEND_URLS["whatsapp"], json=whatsapp_sent())

    reply_with_file(
        client, api_headers, threads["whatsapp"], PDF, "Rechnung März.pdf", "application/pdf"
    )
    worker.drain()

    assert sent_json(responses.calls[1])["document"] == {
        "id": "2731547013760101",
        "filename": "Rechnung März.pdf",
    }


@responses.activate
def test_messenger_uploads_an_attachment_then_sends_it_by_id(client, worker, api_headers, threads):
    responses.post(UPLOAD_URLS["facebook"], json=UPLOADED["facebook"])
    responses.post(SEND_URLS["facebook"], json=messenger_sent("m_IMG"))

    message = reply_with_file(client, api_headers, threads["facebook"], PDF, "devis.pdf", "")
    worker.drain()

    upload, send = responses.calls
    fields = multipart(upload)
    assert json.loads(fields["message"][2]) == {
        "attachment": {"type": "file", "payload": {"is_reusable": True}}
    }
    assert fields["filedata"] == ("devis.pdf", "application/pdf", PDF)
    assert sent_json(send) == {
        "recipient": {"id": "24012345678901234"},
        "messaging_type": "RESPONSE",
        "message": {
            "attachment": {"type": "file", "payload": {"attachment_id": "1857777774821032"}},
            "metadata": f"snorq:{message.id}",
        },
    }
    assert reload(message).status == MessageStatus.SENT


@responses.activate
def test_tiktok_uploads_the_image_then_sends_an_image_message(client, worker, api_headers, threads):
    responses.post(UPLOAD_URLS["tiktok"], json=UPLOADED["tiktok"])
    responses.post(SEND_URLS["tiktok"], json=tiktok_sent("7401234567890000001"))

    message = reply_with_file(client, api_headers, threads["tiktok"])
    worker.drain()

    upload, send = responses.calls
    assert upload.request.headers["Access-Token"] == "tiktok-access-token"
    fields = multipart(upload)
    assert (fields["business_id"][2], fields["media_type"][2]) == (b"7312345678901", b"IMAGE")
    assert fields["file"] == ("stain.png", "image/png", PNG)
    assert sent_json(send) == {
        "business_id": "7312345678901",
        "recipient_type": "CONVERSATION",
        "recipient": TIKTOK_THREAD,
        "message_type": "IMAGE",
        "image": {"media_id": "v0f044gc0000d1e2f3a4b5c6d7e8f9g"},
    }
    assert reload(message).external_id == "7401234567890000001"


# -- refusals and retries ------------------------------------------------------------------


REFUSED = {
    "whatsapp": (400, graph_error(131053, "Media upload error")),
    "facebook": (400, graph_error(100, "(#100) Upload attachment failure", 2018047)),
    "tiktok": (200, tiktok_answer(code=40908, message="Unsupported file type")),
}


@pytest.mark.parametrize("platform", ["whatsapp", "facebook", "tiktok"])
@responses.activate
def test_a_file_the_platform_refuses_fails_with_media_upload_failed_and_is_not_sent(
    client, worker, api_headers, threads, platform
):
    status, answer = REFUSED[platform]
    responses.post(UPLOAD_URLS[platform], status=status, json=answer)

    message = reply_with_file(client, api_headers, threads[platform])
    worker.drain()

    failed = reload(message)
    assert (failed.status, failed.error_code) == (
        MessageStatus.FAILED,
        ErrorCode.MEDIA_UPLOAD_FAILED,
    )
    assert "refused the file" in failed.error_message
    assert [call.request.url for call in responses.calls] == [UPLOAD_URLS[platform]]


@pytest.mark.usefixtures("fast_retries")
@pytest.mark.parametrize(
    "trouble",
    [
        {"status": 503, "json": graph_error(2, "Service unavailable")},
        {"body": requests.ReadTimeout()},
    ],
    ids=["unavailable", "no answer"],
)
@responses.activate
def test_an_upload_that_did_not_go_through_is_tried_again_it_delivers_nothing(
    client, worker, api_headers, threads, trouble
):
    responses.post(UPLOAD_URLS["whatsapp"], **trouble)
    responses.post(UPLOAD_URLS["whatsapp"], json=UPLOADED["whatsapp"])
    responses.post(SEND_URLS["whatsapp"], json=whatsapp_sent("wamid.LATER"))

    message = reply_with_file(client, api_headers, threads["whatsapp"])
    worker.drain()

    assert reload(message).status == MessageStatus.SENT
    assert len(responses.calls) == 3


@responses.activate
def test_a_file_gone_from_storage_fails_the_reply_with_a_reason(
    request, client, api_headers, threads
):
    message = reply_with_file(client, api_headers, threads["whatsapp"])
    get_storage().delete(Attachment.get(Attachment.message == message.id).storage_key)

    # The worker starts only now: a running one could send before the file is deleted.
    request.getfixturevalue("worker").drain()

    failed = reload(message)
    assert failed.status == MessageStatus.FAILED
    assert failed.error_message == "The attached file is no longer in SNORQ's storage."
    assert not responses.calls


@responses.activate
def test_outside_the_window_a_file_fails_before_anything_is_uploaded(
    client, worker, api_headers, org, connections
):
    thread = conversation(org, connections["facebook"], wrote_hours_ago=30)

    message = reply_with_file(client, api_headers, thread)
    worker.drain()

    assert reload(message).error_code == ErrorCode.OUTSIDE_WINDOW
    assert not responses.calls
