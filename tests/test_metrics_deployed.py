"""Metrics as deployed: the Procfile's gunicorn and ``dramatiq workers``, several processes each.

A scrape reaches one process, so each must report what all of them counted: any
web process's ``/metrics`` the webhooks every web process took, and the workers'
exporter the work of every worker process.
"""

import hashlib
import hmac

import pytest
import requests

from tests import processes
from tests.support import meta_body

pytestmark = pytest.mark.e2e

TOKEN = "deployed-metrics-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
WEBHOOKS = 12
#: The app secret ``processes.stack_env`` gives WhatsApp.
APP_SECRET = "e2e-wa-secret"


def whatsapp_text(number: int) -> dict:
    message = {
        "from": "16505551234",
        "id": f"wamid.metrics-{number}",
        "timestamp": "1732579200",
        "type": "text",
        "text": {"body": f"Message {number}"},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "messages": [message],
    }
    entry = {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}
    return {"object": "whatsapp_business_account", "entry": [entry]}


def sample(text: str, line_start: str) -> float:
    """The value of the first sample line starting with ``line_start``."""
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="module")
def deployment():
    if not processes.servers_available():
        pytest.skip("PostgreSQL and Redis do not both answer")
    worker_port = processes.free_port()
    extra = {
        "SNORQ_METRICS_TOKEN": TOKEN,
        "SNORQ_WORKER_METRICS_PORT": str(worker_port),
        "WEB_CONCURRENCY": "3",
        "WORKER_PROCESSES": "2",
    }
    with processes.stack(**extra) as stack:
        stack.start("web")
        stack.start("worker")
        stack.worker_metrics = f"http://127.0.0.1:{worker_port}/metrics"
        yield stack


def test_every_process_reports_what_all_of_them_counted(deployment):
    for number in range(WEBHOOKS):
        body = meta_body(whatsapp_text(number))
        digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}
        # A new connection each time, so gunicorn's processes share them out.
        answer = requests.post(
            f"{deployment.url}/api/v1/webhooks/whatsapp", data=body, headers=headers, timeout=10
        )
        assert answer.status_code == 200

    received = 'snorq_webhooks_received_total{platform="whatsapp"}'
    for _ in range(6):
        scrape = requests.get(f"{deployment.url}/metrics", headers=BEARER, timeout=10)
        assert scrape.status_code == 200
        assert sample(scrape.text, received) == WEBHOOKS
        assert sample(scrape.text, 'snorq_webhook_ack_seconds_count{platform="whatsapp"}') == (
            WEBHOOKS
        )

    def ingested() -> str | None:
        try:
            text = requests.get(deployment.worker_metrics, headers=BEARER, timeout=5).text
        except requests.ConnectionError:
            return None  # the exporter starts once every worker process has
        lag = sample(text, 'snorq_ingest_lag_seconds_count{platform="whatsapp"}')
        return text if lag == WEBHOOKS else None

    text = processes.wait_for(ingested, timeout=60, what="the workers ingested every webhook")
    unknown = 'snorq_webhooks_unprocessed_total{platform="whatsapp",reason="unknown_account"}'
    assert sample(text, unknown) == WEBHOOKS
    web = requests.get(f"{deployment.url}/metrics", headers=BEARER, timeout=10).text
    assert sample(web, 'snorq_queue_depth{queue="inbound"}') == 0
    assert sample(web, 'snorq_dead_letters{queue="inbound"}') == 0
    assert sample(web, "snorq_broker_reachable") == 1


def test_neither_endpoint_answers_without_the_token(deployment):
    for url in (f"{deployment.url}/metrics", deployment.worker_metrics):
        assert requests.get(url, timeout=5).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert requests.get(url, headers=wrong, timeout=5).status_code == 401


def test_readyz_reports_each_dependency(deployment):
    answer = requests.get(f"{deployment.url}/readyz", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"database": "ok", "broker": "ok", "live_events": "ok"}
