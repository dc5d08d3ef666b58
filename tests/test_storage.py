"""Media storage: local files by default, S3 (moto's server, on a local port) when configured."""

import contextlib
import io
import socket
import subprocess
import sys
import time

import boto3
import pytest
import responses

from app.config import get_settings
from app.models import Attachment, AttachmentStatus
from app.storage import LocalStorage, MissingFile, S3Storage, get_storage
from tests.media_fakes import JPEG, PNG, WHATSAPP_IMAGE_LINK, deliver
from workers.broker import INBOUND, MEDIA

BUCKET = "snorq-media"
WORKER_QUEUES = (INBOUND, MEDIA)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3-compatible server in a process of its own, stopped by its PID."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        else:
            pytest.fail("moto's server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """SNORQ configured for a fresh bucket on the local S3 server; its boto3 client."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "snorq-test",
        "AWS_SECRET_ACCESS_KEY": "snorq-test-secret",
        "SNORQ_MEDIA_S3_BUCKET": BUCKET,
        "SNORQ_MEDIA_S3_ENDPOINT": s3_endpoint,
        "SNORQ_MEDIA_S3_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _file(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


# -- the interface, on both stores ----------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "media")
    request.getfixturevalue("s3")
    return get_storage()


def test_a_file_kept_under_a_key_reads_back_and_is_replaced_by_a_new_one(store):
    store.put("attachments/1/7", _file(PNG), "image/png")
    assert store.read("attachments/1/7") == PNG
    store.put("attachments/1/7", _file(JPEG), "image/jpeg")
    with store.open("attachments/1/7") as file:
        assert file.read() == JPEG


def test_a_forgotten_file_is_missing_and_forgetting_it_again_is_harmless(store):
    store.put("avatars/1/2/abc.png", _file(PNG), "image/png")
    store.delete("avatars/1/2/abc.png")
    store.delete("avatars/1/2/abc.png")
    with pytest.raises(MissingFile):
        store.open("avatars/1/2/abc.png")


@pytest.mark.parametrize("key", ["../etc/passwd", "/etc/passwd", "attachments/../../x", "a//b", ""])
def test_only_keys_snorq_makes_are_accepted(store, key):
    with pytest.raises(ValueError, match="not a storage key"):
        store.put(key, _file(PNG), "image/png")


# -- which store, and S3 as a multi-machine deployment uses it ---------------------------------


def test_files_are_kept_under_the_instance_folder_by_default():
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    assert storage.root == get_settings().instance_path / "media"


def test_a_bucket_in_the_settings_keeps_files_in_s3_with_their_type(s3):
    storage = get_storage()
    assert isinstance(storage, S3Storage) and storage.bucket == BUCKET
    storage.put("attachments/3/9", _file(PNG), "image/png")
    stored = s3.get_object(Bucket=BUCKET, Key="attachments/3/9")
    assert (stored["ContentType"], stored["Body"].read()) == ("image/png", PNG)


@responses.activate
def test_a_customer_s_picture_goes_to_s3_and_staff_download_it_from_there(
    s3, client, worker, connections, api_headers
):
    responses.get(WHATSAPP_IMAGE_LINK, body=JPEG, content_type="image/jpeg")

    deliver(client, worker, "whatsapp", "image")

    [attachment] = Attachment.select()
    assert attachment.status == AttachmentStatus.AVAILABLE
    kept = s3.get_object(Bucket=BUCKET, Key=attachment.storage_key)
    assert (kept["ContentType"], kept["Body"].read()) == ("image/jpeg", JPEG)
    response = client.get(f"/api/v1/attachments/{attachment.id}", headers=api_headers)
    assert (response.status_code, response.data) == (200, JPEG)
    assert response.headers["Content-Type"] == "image/jpeg"
