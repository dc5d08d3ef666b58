"""The platform simulator: real request shapes and validation, faults, signed receipts."""

import contextlib
import io
import json
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask, request
from werkzeug.datastructures import Headers
from werkzeug.serving import make_server

from app.config import get_settings
from app.platforms import get_platform
from app.simulator import create_simulator_app
from app.simulator.config import SimulatorConfig
from app.simulator.ids import conversation_id
from app.simulator.media import (
    SAMPLE_AUDIO_ID,
    SAMPLE_DOCUMENT_ID,
    SAMPLE_PICTURE_ID,
    sample_audio,
    sample_document,
    sample_picture,
)
from tests.fixtures import ACCOUNT_IDS

WA, FB, TT = ACCOUNT_IDS["whatsapp"], ACCOUNT_IDS["facebook"], ACCOUNT_IDS["tiktok"]
TOKENS = {name: f"{name}-access-token" for name in ACCOUNT_IDS}
GRAPH = "/graph/v25.0"
TIKTOK = "/tiktok/open_api/v1.3"
CUSTOMER_PSID = "6543210987654321"
TIKTOK_USER = "7123456789012345678"
CONVERSATION = conversation_id(TT, TIKTOK_USER)


@contextlib.contextmanager
def serving(app, port: int = 0):
    """``app`` on a real threaded server (on a free local port by default); yields its URL."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class Receiver:
    """A stand-in for SNORQ's webhook endpoint that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes, Headers]] = []
        self.refuse = 0
        self.app = Flask("receiver")
        self.app.add_url_rule("/api/v1/webhooks/<platform>", view_func=self._take, methods=["POST"])

    def _take(self, platform: str):
        if self.refuse:
            self.refuse -= 1
            return "try later", 503
        self.received.append((platform, request.get_data(), Headers(list(request.headers.items()))))
        return "OK"

    def wait(self, count: int, timeout: float = 5.0) -> list[tuple[str, bytes, Headers]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.received) >= count, self.received
        return self.received


@pytest.fixture
def receiver():
    found = Receiver()
    with serving(found.app) as url:
        found.url = url
        yield found


def make_simulator(snorq_url: str, **overrides):
    config = SimulatorConfig.from_settings(
        get_settings(), snorq_url=snorq_url, delays=(0.0, 0.01), retry_delays=(0.05,), **overrides
    )
    app = create_simulator_app(config)
    sim = app.extensions["simulator"]
    for platform, account_id in ACCOUNT_IDS.items():
        sim.registry.register(platform, account_id, TOKENS[platform])
    return app


@pytest.fixture
def simulator(receiver):
    app = make_simulator(receiver.url)
    yield app
    app.extensions["simulator"].deliveries.close()


@pytest.fixture
def sim(simulator):
    return simulator.test_client()


def wa_send(sim, body=None, token=TOKENS["whatsapp"], account=WA):
    body = {"messaging_product": "whatsapp", "to": "+1 650-555-1234", "type": "text"} | (
        body if body is not None else {"text": {"body": "Hé 👋 see https://example.com/a"}}
    )
    return sim.post(
        f"{GRAPH}/{account}/messages", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def fb_send(sim, body=None, token=TOKENS["facebook"], node="me"):
    body = body or {
        "recipient": {"id": CUSTOMER_PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hello Zoë", "metadata": "snorq:42"},
    }
    return sim.post(f"{GRAPH}/{node}/messages?access_token={token}", json=body)


def tt_send(sim, body=None, token=TOKENS["tiktok"]):
    body = {
        "business_id": TT,
        "recipient_type": "CONVERSATION",
        "recipient": CONVERSATION,
        "message_type": "TEXT",
        "text": {"body": "Merci ✨"},
    } | (body or {})
    return sim.post(f"{TIKTOK}/business/message/send/", json=body, headers={"Access-Token": token})


def payloads(received, platform):
    return [json.loads(body) for name, body, _ in received if name == platform]


def tiktok_content(payload):
    return json.loads(payload["content"])


# -- WhatsApp ---------------------------------------------------------------------


def test_whatsapp_send_answers_with_contacts_and_a_wamid(sim):
    response = wa_send(sim)
    assert response.status_code == 200
    body = response.get_json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+1 650-555-1234", "wa_id": "16505551234"}]
    assert body["messages"][0]["id"].startswith("wamid.")


def test_whatsapp_send_to_a_bsuid_echoes_the_user_id(sim):
    response = wa_send(
        sim, {"recipient": "US.13491208655302741918", "to": None, "text": {"body": "Hi"}}
    )
    assert response.status_code == 200
    assert response.get_json()["contacts"] == [
        {"input": "US.13491208655302741918", "user_id": "US.13491208655302741918"}
    ]


def test_whatsapp_template_send_is_accepted(sim):
    template = {"name": "order_update", "language": {"code": "en_US"}}
    response = wa_send(sim, {"type": "template", "template": template})
    assert response.get_json()["messages"][0]["message_status"] == "accepted"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"messaging_product": None, "text": {"body": "x"}}, 100),
        ({"to": None, "text": {"body": "x"}}, 100),
        ({"text": {"body": "  "}}, 100),
        ({"text": {"body": "x" * 4097}}, 100),
        ({"type": "hologram", "hologram": {}}, 131009),
        ({"type": "template", "template": {"name": "t"}}, 100),
        ({"type": "image", "image": {"id": "999"}}, 131009),
        ({"to": "call me maybe", "text": {"body": "x"}}, 131009),
    ],
)
def test_whatsapp_send_validates_like_the_cloud_api(sim, body, code):
    response = wa_send(sim, body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["type"]) == (code, "OAuthException")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["fbtrace_id"]


@pytest.mark.parametrize(
    ("token", "account", "status", "code"),
    [
        ("not-a-token", WA, 401, 190),
        ("", WA, 400, 104),
        (TOKENS["facebook"], WA, 401, 190),
        (TOKENS["whatsapp"], "106540352249999", 400, 100),
    ],
)
def test_graph_refuses_a_wrong_or_missing_token(sim, token, account, status, code):
    response = wa_send(sim, token=token, account=account)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_an_expired_token_answers_190_with_subcode_463(simulator, sim):
    simulator.extensions["simulator"].registry.register(
        "whatsapp", WA, "old-token", expires_at=time.time() - 1
    )
    error = wa_send(sim, token="old-token").get_json()["error"]
    assert (error["code"], error["error_subcode"]) == (190, 463)


def test_whatsapp_mark_read_with_typing_indicator_succeeds_and_sends_no_webhook(
    simulator, sim, receiver
):
    body = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUE=",
        "typing_indicator": {"type": "text"},
    }
    response = sim.post(
        f"{GRAPH}/{WA}/messages",
        json=body,
        headers={"Authorization": f"Bearer {TOKENS['whatsapp']}"},
    )
    assert response.get_json() == {"success": True}
    time.sleep(0.1)
    assert simulator.extensions["simulator"].deliveries.pending() == 0
    assert receiver.received == []


def test_whatsapp_statuses_arrive_signed_in_order_with_the_callback_data(sim, receiver):
    message_id = wa_send(
        sim, {"text": {"body": "Hi"}, "biz_opaque_callback_data": "snorq:7"}
    ).get_json()["messages"][0]["id"]
    received = receiver.wait(3)
    adapter = get_platform("whatsapp")
    for platform, body, headers in received:
        assert platform == "whatsapp"
        assert adapter.verify_signature(body, headers, time.time())
        assert body.isascii() and b"/" not in body.replace(b"\\/", b"")
    statuses = [
        p["entry"][0]["changes"][0]["value"]["statuses"][0] for p in payloads(received, "whatsapp")
    ]
    assert sorted(s["status"] for s in statuses) == ["delivered", "read", "sent"]
    assert {s["id"] for s in statuses} == {message_id}
    assert {s["biz_opaque_callback_data"] for s in statuses} == {"snorq:7"}
    assert {s["recipient_id"] for s in statuses} == {"16505551234"}
    value = payloads(received, "whatsapp")[0]["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == WA
    assert value["contacts"][0]["wa_id"] == "16505551234"
    assert value["contacts"][0]["user_id"].startswith("US.")


def test_whatsapp_media_upload_lookup_and_download(sim):
    auth = {"Authorization": f"Bearer {TOKENS['whatsapp']}"}
    upload = sim.post(
        f"{GRAPH}/{WA}/media",
        data={"messaging_product": "whatsapp", "type": "image/png", "file": (_png(), "a.png")},
        headers=auth,
    )
    media_id = upload.get_json()["id"]
    info = sim.get(f"{GRAPH}/{media_id}", headers=auth).get_json()
    assert info["id"] == media_id and info["mime_type"] == "image/png"
    assert info["file_size"] == len(_png().getvalue())
    assert {"url", "sha256", "messaging_product"} <= info.keys()
    url = urlsplit(info["url"])
    download = sim.get(f"{url.path}?{url.query}", headers=auth)
    assert download.status_code == 200 and download.data == _png().getvalue()
    assert sim.get(f"{url.path}?{url.query}").status_code != 200
    forged = {**parse_qs(url.query), "ext": [str(int(time.time()) + 3600)]}
    query = "&".join(f"{k}={v[0]}" for k, v in forged.items())
    assert sim.get(f"{url.path}?{query}", headers=auth).status_code == 404


def test_whatsapp_upload_requires_the_messaging_product(sim):
    response = sim.post(
        f"{GRAPH}/{WA}/media",
        data={"file": (_png(), "a.png")},
        headers={"Authorization": f"Bearer {TOKENS['whatsapp']}"},
    )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == 100


def _png():
    return io.BytesIO(sample_picture())


# -- Messenger ---------------------------------------------------------------------


def test_messenger_send_answers_recipient_and_mid(sim):
    response = fb_send(sim)
    assert response.status_code == 200
    body = response.get_json()
    assert body["recipient_id"] == CUSTOMER_PSID and body["message_id"].startswith("m_")


def test_messenger_send_on_the_page_id_with_a_bearer_header(sim):
    body = {
        "recipient": {"id": CUSTOMER_PSID},
        "messaging_type": "UPDATE",
        "message": {"text": "x"},
    }
    response = sim.post(
        f"{GRAPH}/{FB}/messages",
        json=body,
        headers={"Authorization": f"Bearer {TOKENS['facebook']}"},
    )
    assert response.status_code == 200


def test_messenger_sender_action_alone_answers_only_the_recipient(sim, receiver):
    body = {"recipient": {"id": CUSTOMER_PSID}, "sender_action": "typing_on"}
    assert fb_send(sim, body).get_json() == {"recipient_id": CUSTOMER_PSID}
    time.sleep(0.1)
    assert receiver.received == []


@pytest.mark.parametrize(
    "body",
    [
        {
            "recipient": {"id": CUSTOMER_PSID},
            "sender_action": "mark_seen",
            "message": {"text": "x"},
        },
        {"recipient": {"id": CUSTOMER_PSID}, "sender_action": "dance"},
        {"recipient": {}, "messaging_type": "RESPONSE", "message": {"text": "x"}},
        {"recipient": {"id": CUSTOMER_PSID}, "message": {"text": "x"}},
        {
            "recipient": {"id": CUSTOMER_PSID},
            "messaging_type": "MESSAGE_TAG",
            "message": {"text": "x"},
        },
        {
            "recipient": {"id": CUSTOMER_PSID},
            "messaging_type": "RESPONSE",
            "message": {"text": "x" * 2001},
        },
        {
            "recipient": {"id": CUSTOMER_PSID},
            "messaging_type": "RESPONSE",
            "message": {
                "text": "x",
                "quick_replies": [{"content_type": "text", "title": "t", "payload": "p"}] * 14,
            },
        },
        {
            "recipient": {"id": CUSTOMER_PSID},
            "messaging_type": "RESPONSE",
            "message": {
                "text": "x",
                "quick_replies": [{"content_type": "text", "title": "a" * 21}],
            },
        },
        {
            "recipient": {"id": CUSTOMER_PSID},
            "messaging_type": "RESPONSE",
            "message": {
                "text": "x",
                "attachment": {"type": "image", "payload": {"url": "https://x/y.png"}},
            },
        },
    ],
)
def test_messenger_send_validates_like_the_send_api(sim, body):
    response = fb_send(sim, body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == 100 and error["message"].startswith("(#100)")
    assert "error_data" not in error


def test_messenger_human_agent_tag_and_quick_replies_are_accepted(sim):
    body = {
        "recipient": {"id": CUSTOMER_PSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {
            "text": "Pick one",
            "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "Y"}],
        },
    }
    assert fb_send(sim, body).status_code == 200


def test_messenger_echo_delivery_and_read_arrive_signed(sim, receiver):
    mid = fb_send(sim).get_json()["message_id"]
    received = receiver.wait(3)
    adapter = get_platform("facebook")
    assert all(
        adapter.verify_signature(body, headers, time.time()) for _, body, headers in received
    )
    events = [p["entry"][0]["messaging"][0] for p in payloads(received, "facebook")]
    echo = next(e for e in events if "message" in e)
    assert echo["message"]["is_echo"] is True and echo["message"]["mid"] == mid
    assert echo["message"]["metadata"] == "snorq:42" and echo["message"]["text"] == "Hello Zoë"
    assert echo["message"]["app_id"] == "fb-app-id"
    assert (echo["sender"]["id"], echo["recipient"]["id"]) == (FB, CUSTOMER_PSID)
    delivery = next(e for e in events if "delivery" in e)["delivery"]
    assert delivery["mids"] == [mid] and delivery["watermark"] >= echo["timestamp"]
    read = next(e for e in events if "read" in e)
    assert read["read"]["watermark"] >= echo["timestamp"]
    assert read["sender"]["id"] == CUSTOMER_PSID
    assert {p["entry"][0]["id"] for p in payloads(received, "facebook")} == {FB}


def test_user_profile_answers_the_fields_asked_for(sim):
    response = sim.get(
        f"{GRAPH}/{CUSTOMER_PSID}",
        query_string={
            "fields": "first_name,last_name,profile_pic",
            "access_token": TOKENS["facebook"],
        },
    )
    profile = response.get_json()
    assert set(profile) == {"first_name", "last_name", "profile_pic", "id"}
    picture = urlsplit(profile["profile_pic"])
    assert sim.get(f"{picture.path}?{picture.query}").data.startswith(b"\x89PNG")
    unknown = sim.get(
        f"{GRAPH}/{CUSTOMER_PSID}",
        query_string={"fields": "shoe_size", "access_token": TOKENS["facebook"]},
    )
    assert unknown.status_code == 400


# -- TikTok ---------------------------------------------------------------------------


def test_tiktok_send_answers_code_0_and_the_message_id(sim):
    body = tt_send(sim).get_json()
    assert (body["code"], body["message"]) == (0, "OK")
    assert body["request_id"] and body["data"]["message"]["message_id"]


@pytest.mark.parametrize(
    ("body", "token", "code"),
    [
        ({"business_id": None}, TOKENS["tiktok"], 40002),
        ({"recipient_type": "USER"}, TOKENS["tiktok"], 40002),
        ({"message_type": "VIDEO"}, TOKENS["tiktok"], 40002),
        ({"text": {"body": ""}}, TOKENS["tiktok"], 40002),
        ({"text": {"body": "x" * 6001}}, TOKENS["tiktok"], 40002),
        ({"recipient": "no-such-conversation"}, TOKENS["tiktok"], 40007),
        ({"message_type": "IMAGE", "image": {"media_id": "404"}}, TOKENS["tiktok"], 40007),
        ({}, "wrong", 40105),
        ({}, TOKENS["whatsapp"], 40105),
        ({"business_id": "7399999999999"}, TOKENS["tiktok"], 40001),
    ],
)
def test_tiktok_errors_are_http_200_with_a_nonzero_code(sim, body, token, code):
    response = tt_send(sim, body, token=token)
    assert response.status_code == 200
    assert response.get_json()["code"] == code


def test_tiktok_echo_and_read_arrive_signed_with_a_json_string_content(sim, receiver):
    message_id = tt_send(sim).get_json()["data"]["message"]["message_id"]
    received = receiver.wait(2)
    adapter = get_platform("tiktok")
    for platform, body, headers in received:
        assert platform == "tiktok"
        assert adapter.verify_signature(body, headers, time.time())
        assert isinstance(json.loads(body)["content"], str)
    by_event = {p["event"]: p for p in payloads(received, "tiktok")}
    assert set(by_event) == {"im_send_msg", "im_mark_read_msg"}
    echo = tiktok_content(by_event["im_send_msg"])
    assert echo["message_id"] == message_id and echo["text"] == {"body": "Merci ✨"}
    assert (echo["from_user"]["id"], echo["to_user"]["id"]) == (TT, "7123456789012345678")
    assert echo["conversation_id"] == CONVERSATION
    read = tiktok_content(by_event["im_mark_read_msg"])
    assert read["from_user"]["id"] == "7123456789012345678"
    assert read["read"]["last_read_timestamp"] >= echo["timestamp"]
    assert by_event["im_send_msg"]["user_openid"] == TT
    assert "✨".encode() in next(body for _, body, _ in received if b"im_send_msg" in body)


def test_tiktok_media_upload_then_download(sim):
    auth = {"Access-Token": TOKENS["tiktok"]}
    upload = sim.post(
        f"{TIKTOK}/business/message/media/upload/",
        data={"business_id": TT, "media_type": "IMAGE", "file": (_png(), "a.png", "image/png")},
        headers=auth,
    ).get_json()
    media_id = upload["data"]["media_id"]
    assert (
        tt_send(sim, {"message_type": "IMAGE", "image": {"media_id": media_id}}).get_json()["code"]
        == 0
    )
    link = sim.post(
        f"{TIKTOK}/business/message/media/download/",
        json={
            "business_id": TT,
            "conversation_id": CONVERSATION,
            "message_id": "m1",
            "media_id": media_id,
            "media_type": "IMAGE",
        },
        headers=auth,
    ).get_json()["data"]["download_url"]
    url = urlsplit(link)
    assert sim.get(f"{url.path}?{url.query}").data == _png().getvalue()


def test_tiktok_upload_refuses_what_is_not_an_image(sim):
    response = sim.post(
        f"{TIKTOK}/business/message/media/upload/",
        data={"business_id": TT, "media_type": "IMAGE", "file": (_png(), "a.gif", "image/gif")},
        headers={"Access-Token": TOKENS["tiktok"]},
    )
    assert response.get_json()["code"] == 40908


# -- faults and limits ------------------------------------------------------------------


def add_fault(sim, **spec):
    response = sim.post("/_simulator/faults", json=spec)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["fault"]


@pytest.mark.parametrize(
    ("platform", "kind", "status", "code"),
    [
        ("whatsapp", "429", 429, 130429),
        ("whatsapp", "5xx", 500, 131000),
        ("whatsapp", "expired_token", 401, 190),
        ("whatsapp", "outside_window", 400, 131047),
        ("facebook", "429", 429, 613),
        ("facebook", "5xx", 500, 2),
        ("facebook", "expired_token", 401, 190),
        ("facebook", "outside_window", 400, 10),
        ("tiktok", "429", 429, 40100),
        ("tiktok", "5xx", 500, 50000),
        ("tiktok", "expired_token", 200, 40105),
        ("tiktok", "outside_window", 200, 40064),
    ],
)
def test_a_fault_answers_in_the_platform_shape_then_clears(sim, platform, kind, status, code):
    send = {"whatsapp": wa_send, "facebook": fb_send, "tiktok": tt_send}[platform]
    add_fault(sim, platform=platform, kind=kind, retry_after=7)
    response = send(sim)
    assert response.status_code == status
    body = response.get_json()
    assert (body["code"] if platform == "tiktok" else body["error"]["code"]) == code
    if kind == "429":
        assert response.headers["Retry-After"] == "7"
    ok = send(sim)
    assert ok.status_code == 200 and (platform != "tiktok" or ok.get_json()["code"] == 0)


def test_outside_window_for_messenger_carries_subcode_2018278(sim):
    add_fault(sim, platform="facebook", kind="outside_window")
    assert fb_send(sim).get_json()["error"]["error_subcode"] == 2018278


def test_a_fault_counts_down_and_keeps_to_its_endpoint_and_account(sim):
    add_fault(sim, platform="whatsapp", kind="5xx", count=2, status=503, account_id=WA)
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.x"}
    auth = {"Authorization": f"Bearer {TOKENS['whatsapp']}"}
    assert sim.post(f"{GRAPH}/{WA}/messages", json=read, headers=auth).status_code == 200
    assert fb_send(sim).status_code == 200
    assert [wa_send(sim).status_code for _ in range(3)] == [503, 503, 200]
    assert sim.get("/_simulator/faults").get_json() == {"faults": []}


def test_slow_waits_before_answering(sim):
    add_fault(sim, platform="whatsapp", kind="slow", delay=0.3)
    started = time.monotonic()
    assert wa_send(sim).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_timeout_sends_the_message_but_holds_the_answer(sim, receiver):
    add_fault(sim, platform="tiktok", kind="timeout", delay=0.3)
    started = time.monotonic()
    response = tt_send(sim)
    assert time.monotonic() - started >= 0.3
    assert response.get_json()["code"] == 0
    receiver.wait(2)


@pytest.mark.parametrize(
    "spec",
    [
        {"platform": "whatsapp", "kind": "meteor"},
        {"platform": "signal", "kind": "429"},
        {"platform": "whatsapp", "kind": "429", "endpoint": "everything"},
        {"platform": "whatsapp", "kind": "429", "count": 0},
        {"platform": "whatsapp", "kind": "5xx", "status": 404},
        {"platform": "whatsapp", "kind": "slow", "delay": "soon"},
    ],
)
def test_a_fault_that_cannot_happen_is_refused(sim, spec):
    response = sim.post("/_simulator/faults", json=spec)
    assert response.status_code == 400 and response.get_json()["error"]
    assert sim.get("/_simulator/faults").get_json() == {"faults": []}


def test_throughput_beyond_the_platform_limit_is_refused(receiver):
    app = make_simulator(receiver.url, throughput={"whatsapp": (2, 60.0), "tiktok": (1, 60.0)})
    client = app.test_client()
    try:
        codes = [wa_send(client).status_code for _ in range(3)]
        assert codes == [200, 200, 400]
        assert wa_send(client).get_json()["error"]["code"] == 130429
        assert [tt_send(client).get_json()["code"] for _ in range(2)] == [0, 40100]
    finally:
        app.extensions["simulator"].deliveries.close()


def test_the_journal_keeps_arrival_times_and_bodies_but_no_tokens(sim):
    wa_send(sim)
    tt_send(sim)
    entries = sim.get("/_simulator/requests", query_string={"platform": "whatsapp"}).get_json()
    (entry,) = entries["requests"]
    assert entry["endpoint"] == "send" and entry["account_id"] == WA
    assert entry["params"]["text"]["body"].startswith("Hé")
    assert entry["at"] <= entry["finished_at"]
    everything = json.dumps(sim.get("/_simulator/requests").get_json())
    assert TOKENS["whatsapp"] not in everything and TOKENS["tiktok"] not in everything
    later = sim.get("/_simulator/requests", query_string={"since": entry["seq"]}).get_json()
    assert [e["platform"] for e in later["requests"]] == ["tiktok"]
    assert sim.delete("/_simulator/requests").status_code == 204
    assert sim.get("/_simulator/requests").get_json()["requests"] == []


def test_a_refused_webhook_is_delivered_again(simulator, sim, receiver):
    receiver.refuse = 1
    wa_send(sim)
    receiver.wait(3)
    deliveries = simulator.extensions["simulator"].deliveries
    deadline = time.monotonic() + 5
    while deliveries.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    history = sim.get("/_simulator/webhooks").get_json()["webhooks"]
    assert all(entry["delivered"] for entry in history)
    assert sorted(entry["attempts"] for entry in history) == [1, 1, 2]


# -- connecting accounts ------------------------------------------------------------------


def _redirected(response):
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def test_facebook_login_code_exchange_long_lived_token_and_paged_pages(simulator, sim):
    registry = simulator.extensions["simulator"].registry
    registry.add_account("facebook", "1234567891", "Second page")
    redirect_uri = "http://snorq.test/api/v1/platforms/callback/facebook"
    back = _redirected(
        sim.get(
            "/facebook/v25.0/dialog/oauth",
            query_string={"client_id": "fb-app-id", "redirect_uri": redirect_uri, "state": "s1"},
        )
    )
    assert back["state"] == "s1"
    exchange = {
        "client_id": "fb-app-id",
        "client_secret": "fb-app-secret",
        "redirect_uri": redirect_uri,
        "code": back["code"],
    }
    short = sim.get(f"{GRAPH}/oauth/access_token", query_string=exchange).get_json()
    assert short["token_type"] == "bearer" and short["expires_in"] <= 7200
    again = sim.get(f"{GRAPH}/oauth/access_token", query_string=exchange).get_json()
    assert again["error"]["error_subcode"] == 36009
    long = sim.get(
        f"{GRAPH}/oauth/access_token",
        query_string={
            "grant_type": "fb_exchange_token",
            "client_id": "fb-app-id",
            "client_secret": "fb-app-secret",
            "fb_exchange_token": short["access_token"],
        },
    ).get_json()
    assert long["expires_in"] > 50 * 86400
    first = sim.get(
        f"{GRAPH}/me/accounts", query_string={"access_token": long["access_token"], "limit": 1}
    ).get_json()
    assert len(first["data"]) == 1 and "next" in first["paging"]
    following = urlsplit(first["paging"]["next"])
    second = sim.get(f"{following.path}?{following.query}").get_json()
    assert "next" not in second["paging"]
    pages = {p["id"]: p for p in first["data"] + second["data"]}
    assert set(pages) == {FB, "1234567891"}
    assert {"access_token", "name", "category", "tasks"} <= pages[FB].keys()
    assert fb_send(sim, token=pages[FB]["access_token"]).status_code == 200
    subscribe = sim.post(
        f"{GRAPH}/{FB}/subscribed_apps",
        query_string={
            "subscribed_fields": "messages,message_echoes",
            "access_token": pages[FB]["access_token"],
        },
    )
    assert subscribe.get_json() == {"success": True}


def test_code_exchange_refuses_a_wrong_secret_or_redirect(sim):
    back = _redirected(
        sim.get(
            "/facebook/v25.0/dialog/oauth",
            query_string={"client_id": "fb-app-id", "redirect_uri": "http://a/cb", "state": "s"},
        )
    )
    wrong_secret = {"client_id": "fb-app-id", "client_secret": "nope", "code": back["code"]}
    assert (
        sim.get(f"{GRAPH}/oauth/access_token", query_string=wrong_secret).get_json()["error"][
            "code"
        ]
        == 1
    )
    wrong_redirect = {
        "client_id": "fb-app-id",
        "client_secret": "fb-app-secret",
        "redirect_uri": "http://b/cb",
        "code": back["code"],
    }
    error = sim.get(f"{GRAPH}/oauth/access_token", query_string=wrong_redirect).get_json()["error"]
    assert error["error_subcode"] == 36008


def test_whatsapp_embedded_signup_finds_the_waba_and_its_numbers(sim):
    back = _redirected(
        sim.get(
            "/facebook/v25.0/dialog/oauth",
            query_string={
                "client_id": "wa-app-id",
                "config_id": "wa-config-id",
                "redirect_uri": "http://snorq.test/cb",
                "state": "s2",
            },
        )
    )
    token = sim.get(
        f"{GRAPH}/oauth/access_token",
        query_string={
            "client_id": "wa-app-id",
            "client_secret": "wa-app-secret",
            "redirect_uri": "http://snorq.test/cb",
            "code": back["code"],
        },
    ).get_json()
    assert "expires_in" not in token
    debug = sim.get(
        f"{GRAPH}/debug_token",
        query_string={
            "input_token": token["access_token"],
            "access_token": "wa-app-id|wa-app-secret",
        },
    ).get_json()["data"]
    assert debug["is_valid"] and debug["expires_at"] == 0
    (waba_id,) = {target for scope in debug["granular_scopes"] for target in scope["target_ids"]}
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    numbers = sim.get(f"{GRAPH}/{waba_id}/phone_numbers", headers=auth).get_json()["data"]
    assert [n["id"] for n in numbers] == [WA]
    assert sim.post(f"{GRAPH}/{waba_id}/subscribed_apps", headers=auth).get_json() == {
        "success": True
    }
    assert wa_send(sim, token=token["access_token"]).status_code == 200


def test_tiktok_authorize_token_and_rotating_refresh(sim):
    back = _redirected(
        sim.get(
            "/tiktok/v2/auth/authorize/",
            query_string={
                "client_key": "tt-client-key",
                "scope": "message.list.send",
                "response_type": "code",
                "redirect_uri": "http://snorq.test/cb",
                "state": "s3",
            },
        )
    )
    assert back["state"] == "s3"
    app = {"client_id": "tt-client-key", "client_secret": "tt-client-secret"}
    tokens = sim.post(
        f"{TIKTOK}/tt_user/oauth2/token/",
        json=app
        | {
            "grant_type": "authorization_code",
            "auth_code": back["code"],
            "redirect_uri": "http://snorq.test/cb",
        },
    ).get_json()
    assert tokens["code"] == 0
    data = tokens["data"]
    assert data["open_id"] == TT and data["expires_in"] == 86400
    assert {"refresh_token", "refresh_token_expires_in", "scope"} <= data.keys()
    assert tt_send(sim, token=data["access_token"]).get_json()["code"] == 0
    refresh = app | {"grant_type": "refresh_token", "refresh_token": data["refresh_token"]}
    renewed = sim.post(f"{TIKTOK}/tt_user/oauth2/refresh_token/", json=refresh).get_json()
    assert renewed["code"] == 0 and renewed["data"]["refresh_token"] != data["refresh_token"]
    spent = sim.post(f"{TIKTOK}/tt_user/oauth2/refresh_token/", json=refresh).get_json()
    assert spent["code"] == 40104
    wrong_app = sim.post(
        f"{TIKTOK}/tt_user/oauth2/refresh_token/", json=refresh | {"client_secret": "x"}
    ).get_json()
    assert wrong_app["code"] == 40101


def test_registering_an_account_makes_its_token_valid(sim):
    response = sim.post(
        "/_simulator/accounts",
        json={"platform": "whatsapp", "account_id": "555000111", "access_token": "fresh"},
    )
    assert response.status_code == 201
    assert wa_send(sim, token="fresh", account="555000111").status_code == 200


# -- the fake customer writing ------------------------------------------------------------


@pytest.mark.parametrize("platform", ["whatsapp", "facebook", "tiktok"])
def test_the_customer_sends_a_picture_snorq_can_verify_and_fetch(sim, receiver, platform):
    response = sim.post(
        "/_simulator/customers/messages",
        json={
            "platform": platform,
            "account_id": ACCOUNT_IDS[platform],
            "text": "Look",
            "image": True,
        },
    )
    assert response.status_code == 202
    ((_, body, headers),) = receiver.wait(1)
    assert get_platform(platform).verify_signature(body, headers, time.time())
    assert platform == "tiktok" or body.isascii()
    payload = json.loads(body)
    if platform == "whatsapp":
        message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        assert message["image"]["id"] == SAMPLE_PICTURE_ID and message["image"]["caption"] == "Look"
        info = sim.get(
            f"{GRAPH}/{SAMPLE_PICTURE_ID}",
            headers={"Authorization": f"Bearer {TOKENS['whatsapp']}"},
        ).get_json()
        assert info["mime_type"] == "image/png"
    elif platform == "facebook":
        url = payload["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"]
        assert sim.get(url.split("localhost", 1)[1]).data.startswith(b"\x89PNG")
    else:
        content = json.loads(payload["content"])
        assert payload["event"] == "im_receive_msg"
        assert content["type"] == "image" and content["to_user"]["id"] == TT


def customer_writes(sim, platform: str, **message):
    body = {"platform": platform, "account_id": ACCOUNT_IDS[platform], **message}
    return sim.post("/_simulator/customers/messages", json=body)


def whatsapp_message(payload: dict) -> dict:
    return payload["entry"][0]["changes"][0]["value"]["messages"][0]


def messenger_file(payload: dict) -> dict:
    return payload["entry"][0]["messaging"][0]["message"]["attachments"][0]


def download(sim, url: str) -> bytes:
    link = urlsplit(url)
    response = sim.get(f"{link.path}?{link.query}")
    assert response.status_code == 200
    return response.data


def test_a_customer_s_voice_message_carries_the_sample_audio(sim, receiver):
    assert customer_writes(sim, "whatsapp", audio=True).status_code == 202
    assert customer_writes(sim, "facebook", audio=True).status_code == 202

    received = receiver.wait(2)
    (whatsapp,) = payloads(received, "whatsapp")
    voice = whatsapp_message(whatsapp)
    assert voice["type"] == "audio"
    assert (voice["audio"]["id"], voice["audio"]["mime_type"]) == (SAMPLE_AUDIO_ID, "audio/mpeg")
    assert "caption" not in voice["audio"]
    (messenger,) = payloads(received, "facebook")
    attachment = messenger_file(messenger)
    assert attachment["type"] == "audio"
    assert download(sim, attachment["payload"]["url"]) == sample_audio()


def test_a_customer_s_document_keeps_its_name_on_every_platform(sim, receiver):
    assert customer_writes(sim, "whatsapp", document=True, text="My receipt").status_code == 202
    assert customer_writes(sim, "facebook", document=True).status_code == 202

    received = receiver.wait(2)
    (whatsapp,) = payloads(received, "whatsapp")
    document = whatsapp_message(whatsapp)["document"]
    assert document["id"] == SAMPLE_DOCUMENT_ID
    assert (document["filename"], document["caption"]) == ("receipt-1042.pdf", "My receipt")
    (messenger,) = payloads(received, "facebook")
    attachment = messenger_file(messenger)
    assert attachment["type"] == "file"
    # As on Meta's CDN, the file's name is the last part of the link's path.
    assert urlsplit(attachment["payload"]["url"]).path.endswith("/receipt-1042.pdf")
    assert download(sim, attachment["payload"]["url"]) == sample_document()


@pytest.mark.parametrize(
    ("platform", "message"),
    [
        ("whatsapp", {"audio": True, "text": "Listen"}),
        ("whatsapp", {"audio": True, "document": True}),
        ("tiktok", {"audio": True}),
        ("tiktok", {"document": True}),
        ("facebook", {}),
    ],
)
def test_the_customer_endpoint_refuses_a_message_the_platform_could_not_carry(
    sim, platform, message
):
    assert customer_writes(sim, platform, **message).status_code == 400


def test_a_customer_keeps_the_name_they_were_first_given(sim, receiver):
    named = {"from": "34611222333", "name": "Inès Lefèvre"}
    customer_writes(sim, "whatsapp", text="Hola", **named)
    customer_writes(sim, "whatsapp", text="¿Sigue disponible?", **{"from": named["from"]})

    first, second = payloads(receiver.wait(2), "whatsapp")
    names = [
        p["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"]
        for p in (first, second)
    ]
    assert names == ["Inès Lefèvre", "Inès Lefèvre"]


def test_the_messenger_profile_names_the_customer_as_their_message_did(sim, receiver):
    customer_writes(sim, "facebook", text="Hi", **{"from": CUSTOMER_PSID, "name": "Inès Lefèvre"})

    profile = sim.get(
        f"{GRAPH}/{CUSTOMER_PSID}",
        query_string={"fields": "first_name,last_name,name", "access_token": TOKENS["facebook"]},
    ).get_json()
    assert (profile["name"], profile["first_name"], profile["last_name"]) == (
        "Inès Lefèvre",
        "Inès",
        "Lefèvre",
    )


def test_tiktok_participants_name_the_customer_as_their_message_did(sim, receiver):
    customer_writes(sim, "tiktok", text="Hi", **{"from": TIKTOK_USER, "name": "Inès Lefèvre"})
    (webhook,) = payloads(receiver.wait(1), "tiktok")

    answer = sim.get(
        f"{TIKTOK}/business/message/content/list/",
        query_string={"business_id": TT, "conversation_id": CONVERSATION},
        headers={"Access-Token": TOKENS["tiktok"]},
    ).get_json()
    customer = next(p for p in answer["data"]["participants"] if p["role"] == "PERSONAL_ACCOUNT")
    assert customer["display_name"] == "Inès Lefèvre"
    assert tiktok_content(webhook)["from"] == "ines.5678"


def test_the_simulator_runs_as_its_own_process(receiver, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "app.simulator", "--port", str(port)]
    command += ["--snorq-url", receiver.url, "--delays", "0,0.01", "--throughput", "tiktok=5/60"]
    command += ["--account", f"tiktok:{TT}:tt-token:tt-refresh"]
    log = tmp_path / "simulator.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while "Platform simulator at" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        body = {
            "business_id": TT,
            "recipient_type": "CONVERSATION",
            "recipient": CONVERSATION,
            "message_type": "TEXT",
            "text": {"body": "Hi"},
        }
        sent = requests.post(
            f"{base}{TIKTOK}/business/message/send/",
            json=body,
            headers={"Access-Token": "tt-token"},
            timeout=5,
        )
        assert sent.json()["code"] == 0
        ((_, webhook, headers), _) = receiver.wait(2)
        assert get_platform("tiktok").verify_signature(webhook, headers, time.time())
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_batch_request_answers_each_call_as_its_own_request(sim):
    calls = [
        {"method": "GET", "relative_url": f"debug_token?input_token={TOKENS['whatsapp']}"},
        {"method": "GET", "relative_url": "no-such-node"},
    ]
    response = sim.post(
        f"{GRAPH}",
        data={"batch": json.dumps(calls), "include_headers": "false"},
        headers={"Authorization": "Bearer wa-app-id|wa-app-secret"},
    )
    assert response.status_code == 200
    first, second = response.get_json()
    assert first["code"] == 200 and "headers" not in first
    assert json.loads(first["body"])["data"]["granular_scopes"][0]["target_ids"]
    assert second["code"] == 400
    assert json.loads(second["body"])["error"]["code"] == 100
    journal = sim.get("/_simulator/requests").get_json()["requests"]
    assert [entry["path"] for entry in journal] == [
        f"{GRAPH}/debug_token",
        f"{GRAPH}/no-such-node",
        GRAPH,
    ]
