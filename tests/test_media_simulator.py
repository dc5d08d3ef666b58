"""Files and profiles through the platform simulator, over HTTP, as the sandbox runs them:
the customer sends a file, SNORQ stores the message, fetches the file from the simulated
platform, and serves it; Messenger and TikTok customers get their names and pictures."""

import time

import pytest
import requests

from app import create_app
from app.config import get_settings
from app.models import Attachment, AttachmentStatus, Contact
from app.simulator.customer import customer
from app.simulator.media import sample_audio, sample_document, sample_picture
from tests.fixtures import ACCOUNT_IDS
from tests.media_fakes import media_storage  # noqa: F401  (the storage fixture)
from tests.test_simulator import make_simulator, serving

pytestmark = pytest.mark.usefixtures("storage", "connections")

SAMPLES = {"image": sample_picture(), "audio": sample_audio(), "document": sample_document()}


@pytest.fixture
def simulator_url(monkeypatch):
    """SNORQ's web process and the simulator, each on a local port, pointed at each other."""
    with serving(create_app()) as snorq_url:
        simulator = make_simulator(snorq_url)
        with serving(simulator) as url:
            monkeypatch.setenv("GRAPH_API_URL", f"{url}/graph/v25.0")
            monkeypatch.setenv("TIKTOK_API_URL", f"{url}/tiktok/open_api/v1.3")
            get_settings.cache_clear()
            yield url
        simulator.extensions["simulator"].deliveries.close()


def customer_writes(simulator_url: str, platform: str, **message) -> None:
    response = requests.post(
        f"{simulator_url}/_simulator/customers/messages",
        json={"platform": platform, "account_id": ACCOUNT_IDS[platform], **message},
        timeout=5,
    )
    assert response.status_code == 202, response.text


def settle(worker, done, timeout: float = 15.0) -> None:
    """Run the worker until ``done()`` (the simulator's webhooks arrive on their own time)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "nothing settled in time"
        worker.drain()
        time.sleep(0.05)


def settled_attachment() -> Attachment | None:
    return Attachment.get_or_none(Attachment.status != AttachmentStatus.PENDING)


@pytest.mark.parametrize(
    ("platform", "kind"),
    [
        ("whatsapp", "image"),
        ("whatsapp", "audio"),
        ("whatsapp", "document"),
        ("facebook", "image"),
        ("facebook", "audio"),
        ("facebook", "document"),
        ("tiktok", "image"),
    ],
)
def test_a_customer_s_file_reaches_staff_through_the_simulated_platform(
    simulator_url, client, worker, api_headers, platform, kind
):
    customer_writes(simulator_url, platform, **{kind: True})

    settle(worker, settled_attachment)

    attachment = settled_attachment()
    assert (attachment.status, attachment.kind) == (AttachmentStatus.AVAILABLE, kind)
    served = client.get(f"/api/v1/attachments/{attachment.id}", headers=api_headers)
    assert served.data == SAMPLES[kind]
    if kind == "document":
        # Messenger names a file only at the end of its link; WhatsApp in the message.
        assert attachment.filename == "receipt-1042.pdf"
        assert served.headers["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize("platform", ["facebook", "tiktok"])
def test_a_customer_is_named_and_pictured_by_the_simulated_platform(
    simulator_url, client, worker, api_headers, platform
):
    customer_writes(simulator_url, platform, text="Hola")

    settle(worker, lambda: Contact.get_or_none(Contact.avatar_key.is_null(False)))

    contact = Contact.get()
    assert contact.display_name == customer(platform, contact.external_id).name
    served = client.get(f"/api/v1/contacts/{contact.id}/avatar", headers=api_headers)
    assert served.data == sample_picture()
