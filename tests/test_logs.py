"""Logs: a request id from the web request into its jobs, both formats, and nothing secret."""

import io
import json
import logging

import pytest

from app.config import get_settings
from app.logs import JsonFormatter, TextFormatter, concealing, request_context
from tests.payloads import payload
from tests.platform_fakes import conversation
from tests.support import signed
from workers.broker import INBOUND, MAINTENANCE, OUTBOUND, broker

WORKER_QUEUES = (INBOUND, OUTBOUND, MAINTENANCE)
UNKNOWN_PHONE_NUMBER_ID = "999000999"


@pytest.fixture
def json_lines():
    """Every line logged meanwhile, as SNORQ writes them with ``LOG_FORMAT=json``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def unknown_account_webhook() -> tuple[bytes, dict]:
    body = payload("whatsapp", "text")
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = UNKNOWN_PHONE_NUMBER_ID
    return signed("whatsapp", body)


def test_a_webhooks_request_id_is_on_its_web_and_worker_lines(client, worker, json_lines, caplog):
    # The web's line per queued webhook is DEBUG (one more line per request costs the
    # web a quarter of its throughput: bench/README.md).
    caplog.set_level(logging.DEBUG, logger="app.web.webhooks")
    data, headers = unknown_account_webhook()

    response = client.post("/api/v1/webhooks/whatsapp", data=data, headers=headers)
    worker.drain()

    request_id = response.headers["X-Request-Id"]
    lines = [line for line in json_lines() if line.get("request_id") == request_id]
    by_logger = {line["logger"]: line["message"] for line in lines}
    assert "Queued a whatsapp webhook as delivery" in by_logger["app.web.webhooks"]
    assert UNKNOWN_PHONE_NUMBER_ID in by_logger["workers.inbound"]


def test_a_sane_incoming_request_id_is_kept_and_anything_else_replaced(client):
    kept = client.get("/healthz", headers={"X-Request-Id": "lb-4f2a:9"})
    assert kept.headers["X-Request-Id"] == "lb-4f2a:9"
    for hostile in ("a" * 129, "two words", "a,b", "x\u00e9"):
        answered = client.get("/healthz", headers={"X-Request-Id": hostile})
        assert answered.headers["X-Request-Id"] != hostile
        assert len(answered.headers["X-Request-Id"]) == 32


def test_grouped_webhooks_each_keep_their_own_request_id(json_lines, worker):
    from workers.inbound import ingest_webhooks

    deliveries = []
    for number in range(2):
        data, _ = unknown_account_webhook()
        deliveries.append([f"d{number}", "whatsapp", data.decode(), 1767225600.0, f"req-{number}"])
    ingest_webhooks.send_with_options(args=(deliveries,), request_id="req-0,req-1")
    worker.drain()

    warnings = [line for line in json_lines() if line["logger"] == "workers.inbound"]
    assert [(line["request_id"], line["message"].split()[1]) for line in warnings] == [
        ("req-0", "d0"),
        ("req-1", "d1"),
    ]


def test_a_reply_sent_through_the_api_queues_its_job_with_the_request_id(
    client, api_headers, org, connections
):
    thread = conversation(org, connections["facebook"])
    response = client.post(
        f"/api/v1/conversations/{thread.id}/messages",
        json={"content": "On its way"},
        headers={**api_headers, "X-Request-Id": "staff-click-1"},
    )
    assert response.status_code == 202

    [job] = [
        json.loads(job)
        for job in broker.client.hgetall(f"{broker.namespace}:{OUTBOUND}.msgs").values()
    ]
    assert job["options"]["request_id"] == "staff-click-1"


SECRETS = [
    "wa-app-secret",  # WHATSAPP_APP_SECRET (tests/conftest.py)
    "fb-verify-token",  # FACEBOOK_VERIFY_TOKEN
    "EAAGm0PX4ZCpsBAKZC",  # a platform token in a header or a URL
    "snorq_" + "x" * 43,  # a SNORQ API token
]


def log_secrets_by_mistake() -> None:
    log = logging.getLogger("tests.careless")
    log.warning("app secret is %s, verify token %s", SECRETS[0], SECRETS[1])
    log.warning("calling %s", f"https://graph.test/me?access_token={SECRETS[2]}&fields=id")
    log.warning("headers: %s", {"Authorization": f"Bearer {SECRETS[2]}"})
    log.warning('sent {"refresh_token": "%s"} with %s', SECRETS[2], SECRETS[3])
    try:
        raise ValueError(f"refused client_secret={SECRETS[0]}")
    except ValueError:
        log.exception("it failed")


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()])
def test_secrets_logged_by_mistake_are_scrubbed_in_either_format(formatter):
    get_settings()  # as every process does when it starts
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)
    try:
        log_secrets_by_mistake()
    finally:
        logging.getLogger().removeHandler(handler)

    text = stream.getvalue()
    assert text.count("[redacted]") >= 7
    for secret in SECRETS:
        assert secret not in text
    if isinstance(formatter, JsonFormatter):
        lines = [json.loads(line) for line in text.splitlines()]
        assert len(lines) == 5
        assert "ValueError: refused client_secret=[redacted]" in lines[-1]["exception"]


def test_customer_texts_being_processed_are_concealed_whatever_logs_them(caplog):
    with request_context("r-9"), concealing(["Où est ma commande ?"]):
        logging.getLogger("tests.careless").warning("got %r", {"text": "Où est ma commande ?"})
    [record] = caplog.records
    assert record.getMessage() == "got {'text': '[text]'}"
    assert record.request_id == "r-9"


def test_text_lines_name_the_request_only_when_there_is_one():
    formatter = TextFormatter()
    record = logging.LogRecord("snorq", logging.INFO, __file__, 1, "hello", None, None)
    assert formatter.format(record).endswith(" INFO snorq: hello")
    record.request_id = "abc"
    assert formatter.format(record).endswith(" INFO snorq [abc]: hello")


def test_at_debug_a_jobs_arguments_are_not_logged(caplog, worker):
    from workers.inbound import ingest_webhooks

    body, _ = unknown_account_webhook()
    caplog.set_level(logging.DEBUG, logger="workers.inbound.ingest_webhooks")
    ingest_webhooks.send([["d-debug", "whatsapp", body.decode(), 0.0, "r-debug"]])
    worker.drain()

    actor_lines = [r.getMessage() for r in caplog.records if r.name == ingest_webhooks.logger.name]
    assert "Received its arguments (not logged)." in actor_lines
    assert not any(body.decode()[:40] in r.getMessage() for r in caplog.records)
