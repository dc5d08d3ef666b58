"""The media API: organization-scoped downloads that a browser never runs, and replies
carrying a file (multipart), checked against the platform's limits as clear 400s."""

import io
import json

import pytest

from app.auth import create_api_token, hash_password
from app.config import get_settings
from app.models import Attachment, AttachmentStatus, ContentType, Message, User
from app.storage import LocalStorage
from tests.media_fakes import (
    EXE,
    HTML,
    JPEG,
    MP3,
    PDF,
    PNG,
    media_storage,  # noqa: F401  (the storage fixture)
)
from tests.platform_fakes import conversation
from workers.broker import OUTBOUND, broker

pytestmark = pytest.mark.usefixtures("storage")

SANDBOX = "default-src 'none'; sandbox"


def kept(storage: LocalStorage, thread, data: bytes, mime_type: str, kind: str, filename=None):
    """A customer's message whose file SNORQ already fetched and kept."""
    message = Message.create(
        organization=thread.organization_id,
        connection=thread.connection_id,
        conversation=thread.id,
        direction="INBOUND",
        content_type=kind.upper(),
        content=f"[{kind}]",
        status="RECEIVED",
    )
    attachment = Attachment.create(
        organization=thread.organization_id,
        message=message,
        kind=kind,
        mime_type=mime_type,
        filename=filename,
        size=len(data),
        sha256=f"{len(data):064x}",
        status=AttachmentStatus.AVAILABLE,
        storage_key=f"attachments/{thread.organization_id}/{message.id}",
    )
    storage.put(attachment.storage_key, io.BytesIO(data), mime_type)
    return attachment


@pytest.fixture
def thread(org, connections):
    return conversation(org, connections["whatsapp"])


@pytest.fixture
def outsider(other_org):
    """The API headers of a staff member of another organization."""
    user = User.create(
        organization=other_org, email="spy@globex.test", password_hash=hash_password("pw")
    )
    return {"Authorization": f"Bearer {create_api_token(user)}"}


# -- downloads ---------------------------------------------------------------------------------


def test_a_picture_is_served_inline_as_its_stored_type_and_never_sniffed(
    client, api_headers, storage, thread
):
    attachment = kept(storage, thread, PNG, "image/png", "image")

    response = client.get(f"/api/v1/attachments/{attachment.id}", headers=api_headers)

    assert (response.status_code, response.data) == (200, PNG)
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Length"] == str(len(PNG))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == SANDBOX
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response.headers["Content-Disposition"] == (
        "inline; filename=\"image.png\"; filename*=UTF-8''image.png"
    )


def test_a_voice_message_plays_inline_and_a_document_is_a_download_under_its_name(
    client, api_headers, storage, thread
):
    voice = kept(storage, thread, MP3, "audio/mpeg", "audio")
    document = kept(storage, thread, PDF, "application/pdf", "document", "Rechnung März.pdf")

    played = client.get(f"/api/v1/attachments/{voice.id}", headers=api_headers)
    saved = client.get(f"/api/v1/attachments/{document.id}", headers=api_headers)

    assert played.headers["Content-Disposition"].startswith("inline;")
    assert saved.data == PDF
    assert saved.headers["Content-Disposition"] == (
        "attachment; filename=\"Rechnung M_rz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
    )


@pytest.mark.parametrize("mime_type", ["text/plain", "application/octet-stream", "video/webm"])
def test_a_type_a_browser_could_render_as_a_page_is_always_a_download(
    client, api_headers, storage, thread, mime_type
):
    attachment = kept(storage, thread, b"<b>hello</b>", mime_type, "document")

    response = client.get(f"/api/v1/attachments/{attachment.id}", headers=api_headers)

    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == SANDBOX


def test_another_organization_s_attachment_answers_404_as_if_it_did_not_exist(
    client, storage, thread, outsider
):
    attachment = kept(storage, thread, PNG, "image/png", "image")

    response = client.get(f"/api/v1/attachments/{attachment.id}", headers=outsider)

    assert response.status_code == 404
    assert PNG not in response.data
    missing = client.get(f"/api/v1/attachments/{attachment.id + 1000}", headers=outsider)
    assert missing.get_json() == response.get_json()


@pytest.mark.parametrize("status", [AttachmentStatus.PENDING, AttachmentStatus.FAILED])
def test_an_attachment_without_its_file_yet_answers_404(
    client, api_headers, storage, thread, status
):
    attachment = kept(storage, thread, PNG, "image/png", "image")
    Attachment.update(status=status).where(Attachment.id == attachment.id).execute()

    assert client.get(f"/api/v1/attachments/{attachment.id}", headers=api_headers).status_code == (
        404
    )


def test_a_download_needs_a_signed_in_caller(client, storage, thread):
    attachment = kept(storage, thread, PNG, "image/png", "image")
    assert client.get(f"/api/v1/attachments/{attachment.id}").status_code == 401


def test_a_browser_that_has_the_file_already_gets_a_304(client, api_headers, storage, thread):
    attachment = kept(storage, thread, PNG, "image/png", "image")
    first = client.get(f"/api/v1/attachments/{attachment.id}", headers=api_headers)

    again = client.get(
        f"/api/v1/attachments/{attachment.id}",
        headers={**api_headers, "If-None-Match": first.headers["ETag"]},
    )

    assert (again.status_code, again.data) == (304, b"")
    assert again.headers["Cache-Control"] == "private, no-cache"


def test_a_contact_s_picture_is_served_from_storage_to_its_organization_only(
    client, api_headers, storage, thread, outsider
):
    contact = thread.contact
    contact.avatar_key = f"avatars/{contact.organization_id}/{contact.id}/0a1b2c3d.png"
    contact.save()
    storage.put(contact.avatar_key, io.BytesIO(PNG), "image/png")

    mine = client.get(f"/api/v1/contacts/{contact.id}/avatar", headers=api_headers)
    theirs = client.get(f"/api/v1/contacts/{contact.id}/avatar", headers=outsider)

    assert (mine.status_code, mine.data, mine.headers["Content-Type"]) == (200, PNG, "image/png")
    assert mine.headers["Content-Disposition"].startswith("inline;")
    assert theirs.status_code == 404


def test_a_contact_without_a_picture_answers_404(client, api_headers, thread):
    response = client.get(f"/api/v1/contacts/{thread.contact.id}/avatar", headers=api_headers)
    assert response.status_code == 404


# -- replies carrying a file -----------------------------------------------------------------


def send_file(client, headers, thread, data: bytes, name: str, mime_type: str, **fields):
    form = {"file": (io.BytesIO(data), name, mime_type), **fields}
    return client.post(
        f"/api/v1/conversations/{thread.id}/messages",
        data=form,
        headers=headers,
        content_type="multipart/form-data",
    )


def queued_sends() -> list[int]:
    raw = broker.client.hgetall(f"{broker.namespace}:{OUTBOUND}.msgs")
    return [json.loads(job)["args"][0] for job in raw.values()]


def test_a_picture_reply_is_kept_and_queued_pending_with_its_caption(
    client, api_headers, storage, thread
):
    response = send_file(
        client, api_headers, thread, PNG, "stain.png", "image/png", content="Voilà 📦"
    )

    assert response.status_code == 202
    sent = response.get_json()["message"]
    assert (sent["status"], sent["content"], sent["content_type"]) == (
        "PENDING",
        "Voilà 📦",
        ContentType.IMAGE,
    )
    [attachment] = sent["attachments"]
    assert attachment["kind"] == "image" and attachment["status"] == "AVAILABLE"
    assert (attachment["mime_type"], attachment["filename"]) == ("image/png", "stain.png")
    assert attachment["url"] == f"/api/v1/attachments/{attachment['id']}"
    assert Message.get_by_id(sent["id"]).payload == {"caption": "Voilà 📦"}
    stored = Attachment.get_by_id(attachment["id"])
    assert stored.storage_key.startswith(f"outbound/{thread.organization_id}/")
    assert storage.read(stored.storage_key) == PNG
    assert queued_sends() == [sent["id"]]
    served = client.get(attachment["url"], headers=api_headers)
    assert served.data == PNG


def test_a_document_without_text_reads_as_its_name(client, api_headers, thread):
    response = send_file(client, api_headers, thread, PDF, "receipt-1042.pdf", "application/pdf")

    sent = response.get_json()["message"]
    assert (sent["content"], sent["content_type"]) == (
        "[Document: receipt-1042.pdf]",
        ContentType.DOCUMENT,
    )
    assert Message.get_by_id(sent["id"]).payload is None


def test_a_failed_file_reply_sent_again_still_carries_its_file(client, api_headers, thread):
    sent = send_file(client, api_headers, thread, PDF, "receipt-1042.pdf", "application/pdf")
    message = sent.get_json()["message"]
    Message.update(status="FAILED", error_code=131026).where(Message.id == message["id"]).execute()

    response = client.post(f"/api/v1/messages/{message['id']}/retry", headers=api_headers)

    assert response.status_code == 202
    retried = response.get_json()["message"]
    assert retried["status"] == "PENDING"
    assert retried["attachments"] == message["attachments"]


@pytest.mark.parametrize(
    ("platform", "data", "name", "mime_type", "fields", "reason"),
    [
        ("whatsapp", HTML, "photo.png", "image/png", {}, "does not keep files of type text/html"),
        ("whatsapp", EXE, "invoice.pdf", "application/pdf", {}, "application/x-msdownload"),
        (
            "whatsapp",
            b"GIF89a" + bytes(100),
            "smile.gif",
            "image/gif",
            {},
            "WhatsApp takes a image as image/jpeg, image/png, not image/gif.",
        ),
        (
            "whatsapp",
            PNG + bytes(5_000_001),
            "big.png",
            "image/png",
            {},
            "WhatsApp takes a image of at most 5.0 MB; this one is 5.0 MB.",
        ),
        ("whatsapp", MP3, "note.mp3", "audio/mpeg", {"content": "hi"}, "without text"),
        (
            "facebook",
            PNG,
            "a.png",
            "image/png",
            {"content": "Look"},
            "Messenger sends a image without text: send the text as a reply of its own.",
        ),
        (
            "tiktok",
            PDF,
            "receipt.pdf",
            "application/pdf",
            {},
            "TikTok replies cannot carry a document file (they take: image).",
        ),
        ("tiktok", b"", "empty.png", "image/png", {}, "The attached file is empty."),
    ],
    ids=[
        "markup",
        "program",
        "whatsapp gif",
        "whatsapp image over 5 MB",
        "whatsapp audio caption",
        "messenger caption",
        "tiktok document",
        "empty",
    ],
)
def test_a_file_the_platform_would_refuse_is_a_clear_400_and_nothing_is_kept(
    client, api_headers, org, connections, storage, platform, data, name, mime_type, fields, reason
):
    thread = conversation(org, connections[platform])

    response = send_file(client, api_headers, thread, data, name, mime_type, **fields)

    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    assert not Message.select().exists()
    assert not (storage.root / "outbound").exists()


def test_snorq_s_own_limit_is_a_400_and_far_over_it_the_upload_is_cut_off(
    client, api_headers, thread, monkeypatch
):
    monkeypatch.setenv("SNORQ_MEDIA_MAX_BYTES", "1000")
    get_settings.cache_clear()

    over = send_file(client, api_headers, thread, PNG + bytes(1000), "a.png", "image/png")
    far_over = send_file(client, api_headers, thread, PNG + bytes(200_000), "b.png", "image/png")

    assert over.status_code == 400
    assert "at most 1000 bytes" in over.get_json()["error"]
    assert far_over.status_code == 413


def test_a_form_without_a_file_is_a_400(client, api_headers, thread):
    response = client.post(
        f"/api/v1/conversations/{thread.id}/messages",
        data={"content": "hello"},
        headers=api_headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == 'Attach the file as the form field "file".'


def test_the_same_idempotency_key_sends_the_first_file_once(client, api_headers, storage, thread):
    first = send_file(client, api_headers, thread, PNG, "a.png", "image/png", idempotency_key="k-1")
    again = send_file(
        client, api_headers, thread, JPEG, "b.jpg", "image/jpeg", idempotency_key="k-1"
    )

    assert again.status_code == 202
    assert again.get_json()["message"] == first.get_json()["message"]
    assert queued_sends() == [first.get_json()["message"]["id"]]
    files = [path for path in (storage.root / "outbound").rglob("*") if path.is_file()]
    assert [path.read_bytes() for path in files] == [PNG]


def test_another_organization_s_conversation_takes_no_file(client, thread, outsider):
    response = send_file(client, outsider, thread, PNG, "a.png", "image/png")
    assert response.status_code == 404
