"""``snorq simulate``: a signed inbound webhook that a running SNORQ accepts."""

import hashlib
import hmac
import json
import os
import socket

import pytest
from click.testing import CliRunner

from app import sandbox
from app.cli import main
from app.config import get_settings
from tests.fixtures import ACCOUNT_IDS
from tests.test_simulator import Receiver, serving
from tests.test_webhooks_web import queued_deliveries


@pytest.fixture
def snorq_url(app):
    """SNORQ's web process on a real server (the webhook endpoint as deployed)."""
    with serving(app) as url:
        yield url


def simulate(*args: str):
    return CliRunner().invoke(main, ["simulate", *args])


@pytest.mark.parametrize("platform", ["whatsapp", "facebook", "tiktok"])
def test_simulate_posts_a_message_snorq_accepts_and_queues(snorq_url, platform):
    result = simulate(
        platform,
        "--account-id",
        ACCOUNT_IDS[platform],
        "--from",
        "15557654321",
        "--name",
        "Zoë Ångström",
        "--text",
        "Hé 👋 https://example.com/a",
        "--url",
        snorq_url,
    )
    assert result.exit_code == 0, result.stderr
    assert "answered 200 OK" in result.stderr
    message_id = result.stdout.strip().splitlines()[-1]
    ((_, queued_platform, body, *_),) = queued_deliveries()
    assert queued_platform == platform
    decoded = json.dumps(json.loads(body), ensure_ascii=False)
    assert message_id in decoded and "Hé 👋 https://example.com/a" in decoded
    if platform != "tiktok":
        assert body.isascii() and "\\/" in body


def test_simulate_with_the_wrong_secret_reports_the_refusal(snorq_url):
    result = simulate(
        "facebook",
        "--account-id",
        ACCOUNT_IDS["facebook"],
        "--text",
        "Hi",
        "--url",
        snorq_url,
        "--secret",
        "not-the-secret",
    )
    assert result.exit_code == 1
    assert "401" in result.stderr and "signature" in result.stderr
    assert queued_deliveries() == []


def test_simulate_says_when_snorq_cannot_be_reached():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = simulate(
        "whatsapp", "--account-id", "1", "--text", "Hi", "--url", f"http://127.0.0.1:{port}"
    )
    assert result.exit_code == 1 and "could not reach" in result.stderr


def test_simulate_needs_an_account_id_outside_a_sandbox():
    result = simulate("tiktok", "--text", "Hi")
    assert result.exit_code == 2 and "--account-id" in result.stderr


@pytest.fixture
def sandbox_folder(tmp_path, monkeypatch):
    """A folder where ``snorq run`` once started the sandbox (its environment restored after)."""
    monkeypatch.setattr(os, "environ", dict(os.environ))
    for name in ("SNORQ_PUBLIC_URL", "WHATSAPP_APP_SECRET"):
        os.environ.pop(name)
    os.environ["SNORQ_INSTANCE_PATH"] = str(tmp_path)
    get_settings.cache_clear()
    return tmp_path


def test_in_a_sandbox_folder_simulate_needs_only_the_text(sandbox_folder):
    receiver = Receiver()
    with serving(receiver.app) as url:
        demo = sandbox.prepare("127.0.0.1", int(url.rsplit(":", 1)[1]), True, dict(os.environ))
        result = simulate("whatsapp", "--text", "Hi")
        assert result.exit_code == 0, result.stderr
        ((platform, body, headers),) = receiver.wait(1)
    secret = demo.apps["whatsapp"]["app_secret"]
    assert platform == "whatsapp"
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == expected
    value = json.loads(body)["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == demo.accounts["whatsapp"]["account_id"]
    assert (
        value["metadata"]["display_phone_number"]
        == demo.accounts["whatsapp"]["display_phone_number"]
    )
    assert value["messages"][0]["text"] == {"body": "Hi"}
