"""The platforms' media as the media tests fake them, files of each kind, and storage.

Answers are shaped like the real ones (PLATFORMS.md): WhatsApp's media lookup
``{url, mime_type, sha256, file_size, id, messaging_product}``, TikTok's
``{code, message, request_id, data: {download_url}}``, Messenger's signed CDN links.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from app.simulator.media import sample_audio, sample_document, sample_picture
from app.storage import LocalStorage
from tests.payloads import payload
from tests.platform_fakes import GRAPH, TIKTOK, tiktok_answer
from tests.support import signed
from workers.broker import INBOUND, MEDIA, broker

PNG = sample_picture()
MP3 = sample_audio()
PDF = sample_document()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(200)
HTML = b"<!DOCTYPE html><html><script>fetch('/api/v1/conversations')</script></html>"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(100)

#: The files the payload fixtures name.
WHATSAPP_IMAGE_ID = "1479537139650973"
WHATSAPP_IMAGE_LINK = (
    "https://lookaside.fbsbx.com/whatsapp_business/attachments/"
    "?mid=1479537139650973&ext=1767225600&hash=ATta"
)
MESSENGER_FILE_LINK = "https://cdn.fbsbx.com/v/t59.2708-21/Devis_Été.pdf?_nc_cat=1"
TIKTOK_IMAGE_ID = "v09044g40000cs1a2b3c4d5e6f7g8h9i"
TIKTOK_DOWNLOAD = f"{TIKTOK}/business/message/media/download/"


@pytest.fixture(name="storage")
def media_storage(tmp_path, monkeypatch) -> LocalStorage:
    """A storage folder of the test's own, which every process part uses."""
    local = LocalStorage(tmp_path / "media")
    monkeypatch.setattr("app.storage._storage", lambda *settings: local)
    return local


@pytest.fixture(name="ingest_only")
def inbound_worker():
    """A worker on the inbound queue alone: media fetches stay queued."""
    import dramatiq

    running = dramatiq.Worker(broker, queues={INBOUND}, worker_threads=1)
    running.start()
    running.drain = lambda: (broker.join(INBOUND, timeout=20_000), running.join())
    yield running
    running.stop(timeout=5_000)


def queued_fetches() -> list[int]:
    """The attachment ids waiting on the media queue for a fetch."""
    raw = broker.client.hgetall(f"{broker.namespace}:{MEDIA}.msgs")
    jobs = [json.loads(job) for job in raw.values()]
    return [job["args"][0] for job in jobs if job["actor_name"] == "fetch_attachment"]


def deliver(client, worker, platform: str, body: dict | str) -> None:
    """Post a webhook signed as the platform signs it, and run what it queued."""
    data, headers = signed(platform, payload(platform, body) if isinstance(body, str) else body)
    assert (
        client.post(f"/api/v1/webhooks/{platform}", data=data, headers=headers).status_code == 200
    )
    worker.drain()


def whatsapp_lookup(media_id: str, link: str, mime_type: str, data: bytes) -> dict:
    """``GET /{media-id}``: where the file is, for the next five minutes."""
    return {
        "messaging_product": "whatsapp",
        "url": link,
        "mime_type": mime_type,
        "sha256": hashlib.sha256(data).hexdigest(),
        "file_size": len(data),
        "id": media_id,
    }


def lookup_url(media_id: str) -> str:
    return f"{GRAPH}/{media_id}"


def fresh_link(media_id: str, n: int = 1) -> str:
    return (
        f"https://lookaside.fbsbx.com/whatsapp_business/attachments/"
        f"?mid={media_id}&ext=17672{n:05d}&hash=AT{n}"
    )


def tiktok_link(n: int = 1) -> str:
    return f"https://p16-im-sign.tiktokcdn.test/tos-alisg-i/{n}~tplv.png?x-expires=1767229200"


def tiktok_download(link: str) -> dict:
    """``business/message/media/download/``: a short-lived link to the message's file."""
    return tiktok_answer({"download_url": link})


def without_link(body: dict) -> dict:
    """A WhatsApp media webhook as older payloads send it: the media id, no link."""
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message[message["type"]].pop("url", None)
    return body
