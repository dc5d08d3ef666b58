"""The web side of webhooks: verify over the raw body, queue, acknowledge (or refuse)."""

import json
import time

import pytest
import redis

from tests.support import meta_body, meta_headers, signed, tiktok_body, tiktok_headers
from workers.broker import broker

WHATSAPP_TEXT = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "102290129340398",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": "15550783881",
                            "phone_number_id": "106540352242922",
                        },
                        "contacts": [{"profile": {"name": "Zoë Ångström"}, "wa_id": "16505551234"}],
                        "messages": [
                            {
                                "from": "16505551234",
                                "id": "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUE=",
                                "timestamp": "1732579200",
                                "type": "text",
                                "text": {"body": "Hé 👋 see https://example.com/a/b"},
                            }
                        ],
                    },
                }
            ],
        }
    ],
}


def queued_deliveries() -> list:
    """Every delivery in the inbound queue, in the order they were queued."""
    raw = broker.client.hgetall(f"{broker.namespace}:inbound.msgs")
    jobs = sorted((json.loads(data) for data in raw.values()), key=lambda m: m["message_timestamp"])
    return [delivery for job in jobs for delivery in job["args"][0]]


@pytest.mark.parametrize("platform", ["whatsapp", "facebook"])
def test_meta_handshake_echoes_the_challenge_for_our_verify_token(client, platform):
    token = {"whatsapp": "wa-verify-token", "facebook": "fb-verify-token"}[platform]
    response = client.get(
        f"/api/v1/webhooks/{platform}",
        query_string={
            "hub.mode": "subscribe",
            "hub.verify_token": token,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "wa-verify-token", "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ],
)
def test_meta_handshake_refuses_anything_else(client, query):
    response = client.get("/api/v1/webhooks/whatsapp", query_string=query)
    assert response.status_code == 403
    assert "1" not in response.get_data(as_text=True)


def test_tiktok_has_no_handshake_to_echo(client):
    response = client.get("/api/v1/webhooks/tiktok", query_string={"challenge": "<script>"})
    assert response.status_code == 403
    assert "<script>" not in response.get_data(as_text=True)


def test_a_signed_body_is_queued_byte_for_byte_and_acknowledged(client):
    body = meta_body(WHATSAPP_TEXT)
    assert b"\\u00eb" in body and b"\\ud83d\\udc4b" in body and b"\\/" in body

    response = client.post(
        "/api/v1/webhooks/whatsapp", data=body, headers=meta_headers("whatsapp", body)
    )

    assert response.status_code == 200
    [delivery] = queued_deliveries()
    _, platform, queued_body, received_at, request_id = delivery
    assert platform == "whatsapp"
    assert request_id == response.headers["X-Request-Id"]
    assert queued_body.encode("utf-8", "surrogateescape") == body
    assert abs(received_at - time.time()) < 60


def test_tiktok_utf8_body_is_verified_over_its_raw_bytes(client):
    payload = {
        "event": "im_receive_msg",
        "user_openid": "7312345678901",
        "create_time": 1,
        "content": json.dumps({"text": {"body": "ありがとう 🎉"}}, ensure_ascii=False),
    }
    body = tiktok_body(payload)
    response = client.post("/api/v1/webhooks/tiktok", data=body, headers=tiktok_headers(body))
    assert response.status_code == 200
    assert queued_deliveries()[0][2].encode("utf-8", "surrogateescape") == body


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "sha256=ZZZ"},
        {"X-Hub-Signature-256": "sha256=ünïcode"},
    ],
)
def test_a_missing_or_wrong_meta_signature_is_refused_and_nothing_queued(client, headers):
    body = meta_body(WHATSAPP_TEXT)
    response = client.post("/api/v1/webhooks/whatsapp", data=body, headers=headers)
    assert response.status_code == 401
    assert queued_deliveries() == []


def test_a_refusal_never_reveals_the_expected_signature(client):
    body = meta_body(WHATSAPP_TEXT)
    expected = meta_headers("whatsapp", body)["X-Hub-Signature-256"].removeprefix("sha256=")
    response = client.post(
        "/api/v1/webhooks/whatsapp",
        data=body,
        headers={"X-Hub-Signature-256": "sha256=" + "0" * 64},
    )
    assert expected not in response.get_data(as_text=True)
    assert not any(expected in value for value in response.headers.values())


def test_a_body_signed_for_another_platform_is_refused(client):
    body = meta_body(WHATSAPP_TEXT)
    response = client.post(
        "/api/v1/webhooks/facebook", data=body, headers=meta_headers("whatsapp", body)
    )
    assert response.status_code == 401


def test_a_platform_without_a_configured_secret_refuses_everything(client, monkeypatch):
    from app.config import get_settings

    monkeypatch.delenv("WHATSAPP_APP_SECRET")
    get_settings.cache_clear()
    body = meta_body(WHATSAPP_TEXT)
    response = client.post(
        "/api/v1/webhooks/whatsapp", data=body, headers=meta_headers("whatsapp", body)
    )
    assert response.status_code == 401
    assert queued_deliveries() == []


@pytest.mark.parametrize("age", [301, -301])
def test_a_tiktok_signature_outside_the_tolerance_is_refused(client, age):
    body = tiktok_body({"event": "im_receive_msg", "content": "{}"})
    headers = tiktok_headers(body, at=int(time.time()) - age)
    assert client.post("/api/v1/webhooks/tiktok", data=body, headers=headers).status_code == 401


@pytest.mark.parametrize("header", ["", "t=abc,s=def", "s=deadbeef", "t=1700000000"])
def test_a_malformed_tiktok_signature_header_is_refused(client, header):
    body = tiktok_body({"event": "im_receive_msg"})
    response = client.post(
        "/api/v1/webhooks/tiktok", data=body, headers={"TikTok-Signature": header}
    )
    assert response.status_code == 401


def test_a_body_over_the_limit_is_refused_with_413(client, monkeypatch):
    monkeypatch.setenv("SNORQ_WEBHOOK_MAX_BYTES", "1024")
    from app import create_app
    from app.config import get_settings

    get_settings.cache_clear()
    small_client = create_app().test_client()
    body = b'{"object":"page","entry":[' + b" " * 2048 + b"]}"
    response = small_client.post(
        "/api/v1/webhooks/facebook", data=body, headers=meta_headers("facebook", body)
    )
    assert response.status_code == 413
    assert queued_deliveries() == []


def test_an_unknown_platform_is_not_found(client):
    assert client.post("/api/v1/webhooks/myspace", data=b"{}").status_code == 404


def test_an_unreachable_broker_answers_503_never_200(client, monkeypatch):
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    scripts = {name: unreachable.register_script(s.script) for name, s in broker.scripts.items()}
    monkeypatch.setattr(broker, "scripts", scripts)
    body, headers = signed("whatsapp", WHATSAPP_TEXT)

    response = client.post("/api/v1/webhooks/whatsapp", data=body, headers=headers)

    assert response.status_code == 503
    monkeypatch.undo()
    assert queued_deliveries() == []
    assert client.get("/healthz").status_code == 200
