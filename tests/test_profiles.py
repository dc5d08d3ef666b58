"""Who staff are talking to: names from the webhook (WhatsApp), from Messenger's User
Profile API and TikTok's conversation participants otherwise, pictures kept like any file."""

import datetime
import json

import pytest
import responses
from responses import matchers

from app import live
from app.db import utcnow
from app.models import AuditLog, Contact
from app.platforms.errors import ErrorCode
from tests.media_fakes import (
    PNG,
    deliver,
    media_storage,  # noqa: F401  (the storage fixture)
)
from tests.payloads import payload
from tests.platform_fakes import (
    GRAPH,
    TIKTOK,
    fast_retries,  # noqa: F401  (a fixture)
    graph_error,
    tiktok_answer,
)
from workers import media
from workers.broker import INBOUND, MAINTENANCE

pytestmark = pytest.mark.usefixtures("storage", "connections")
WORKER_QUEUES = (INBOUND, MAINTENANCE)

PSID = "6789012345678901"
PROFILE = f"{GRAPH}/{PSID}"
PICTURE = (
    "https://platform-lookaside.fbsbx.com/platform/profilepic/"
    f"?psid={PSID}&height=1024&width=1024&ext=1767830400&hash=AbZ"
)
TIKTOK_USER = "-000Xt0tEaTLpMtcvFrk0Gmn1SRbNUd3aA3ZP"
PARTICIPANTS = f"{TIKTOK}/business/message/content/list/"
TIKTOK_PICTURE = "https://p16-sign-va.tiktokcdn.test/tos-maliva-avt/abc~c5_100x100.png?x-expires=1"


def messenger_profile(first="Amélie", last="Poulain", picture=PICTURE) -> dict:
    return {"first_name": first, "last_name": last, "profile_pic": picture, "id": PSID}


def tiktok_participants(name="Mariana Souza") -> dict:
    return tiktok_answer(
        {
            "participants": [
                {"role": "BUSINESS_ACCOUNT", "id": "7312345678901", "display_name": "Acme Shop"},
                {
                    "role": "PERSONAL_ACCOUNT",
                    "id": TIKTOK_USER,
                    "display_name": name,
                    "profile_image": TIKTOK_PICTURE,
                    "is_follower": True,
                },
            ],
            "messages": [],
        }
    )


def contact_events(org) -> list[dict]:
    events, _ = live.events_since(org.id, 0)
    return [event["data"]["contact"] for event in events if event["type"] == "contact:updated"]


def another_message(platform: str, event: str, n: int) -> dict:
    """The same customer writing again, under a new message id."""
    body = payload(platform, event)
    if platform == "facebook":
        body["entry"][0]["messaging"][0]["message"]["mid"] = f"m_AGAIN{n}"
    else:
        content = json.loads(body["content"])
        content["message_id"] = f"74123456789012{n:05d}"
        body["content"] = json.dumps(content)
    return body


# -- Messenger -------------------------------------------------------------------------------


@responses.activate
def test_a_messenger_customer_is_named_and_pictured_from_the_user_profile_api(
    client, worker, org, api_headers, storage
):
    responses.get(
        PROFILE,
        json=messenger_profile(),
        match=[matchers.query_param_matcher({"fields": "first_name,last_name,profile_pic"})],
    )
    responses.get(PICTURE, body=PNG, content_type="image/jpeg")

    deliver(client, worker, "facebook", "message")

    lookup, picture = responses.calls
    assert lookup.request.headers["Authorization"] == "Bearer facebook-access-token"
    assert "access_token" not in lookup.request.url
    assert "Authorization" not in picture.request.headers
    contact = Contact.get(Contact.external_id == PSID)
    assert contact.display_name == "Amélie Poulain"
    assert contact.avatar_key.endswith(".png")
    assert storage.read(contact.avatar_key) == PNG
    [updated] = contact_events(org)
    assert updated["display_name"] == "Amélie Poulain"
    assert updated["avatar_url"] == f"/api/v1/contacts/{contact.id}/avatar"
    listed = client.get("/api/v1/conversations", headers=api_headers).get_json()
    assert listed["conversations"][0]["contact"]["avatar_url"] == updated["avatar_url"]
    served = client.get(updated["avatar_url"], headers=api_headers)
    assert (served.data, served.headers["Content-Type"]) == (PNG, "image/png")


@responses.activate
def test_a_fresh_profile_is_not_asked_for_again_and_a_stale_one_is(client, worker):
    responses.get(PROFILE, json=messenger_profile(picture=None))
    responses.get(PROFILE, json=messenger_profile("Amélie", "Poulain-Dufayel", picture=None))

    deliver(client, worker, "facebook", "message")
    deliver(client, worker, "facebook", another_message("facebook", "message", 1))
    assert len(responses.calls) == 1

    stale = utcnow() - media.PROFILE_MAX_AGE - datetime.timedelta(hours=1)
    Contact.update(profile_fetched_at=stale).execute()
    deliver(client, worker, "facebook", another_message("facebook", "message", 2))

    assert len(responses.calls) == 2
    assert Contact.get().display_name == "Amélie Poulain-Dufayel"


@responses.activate
def test_a_profile_meta_refuses_leaves_the_contact_usable_with_its_psid(
    client, worker, org, api_headers
):
    responses.get(
        PROFILE,
        status=400,
        json=graph_error(10, "(#10) Requires business asset user profile access"),
    )

    deliver(client, worker, "facebook", "message")
    deliver(client, worker, "facebook", another_message("facebook", "message", 1))

    contact = Contact.get()
    assert (contact.external_id, contact.display_name, contact.avatar_key) == (PSID, None, None)
    assert contact.profile_fetched_at is not None
    assert len(responses.calls) == 1
    audit = AuditLog.get(AuditLog.action == "profile_fetch")
    assert not audit.ok
    assert audit.detail == (
        f"contact {contact.id}: PERMISSION_DENIED ({int(ErrorCode.PERMISSION_DENIED)}, "
        "platform code 10)"
    )
    listed = client.get("/api/v1/conversations", headers=api_headers).get_json()
    assert listed["conversations"][0]["contact"]["external_id"] == PSID
    assert not contact_events(org)


@pytest.mark.usefixtures("fast_retries")
@responses.activate
def test_a_profile_lookup_that_meets_an_outage_is_tried_again(client, worker):
    responses.get(PROFILE, status=503, json=graph_error(2, "Service temporarily unavailable"))
    responses.get(PROFILE, json=messenger_profile(picture=None))

    deliver(client, worker, "facebook", "message")

    assert Contact.get().display_name == "Amélie Poulain"


@responses.activate
def test_a_picture_that_cannot_be_had_still_leaves_the_name(client, worker):
    responses.get(PROFILE, json=messenger_profile())
    responses.get(PICTURE, status=404)

    deliver(client, worker, "facebook", "message")

    contact = Contact.get()
    assert (contact.display_name, contact.avatar_key) == ("Amélie Poulain", None)


@responses.activate
def test_a_new_picture_replaces_the_old_file(client, worker, storage):
    other_picture = PICTURE.replace("hash=AbZ", "hash=Cd9")
    responses.get(PROFILE, json=messenger_profile())
    responses.get(PROFILE, json=messenger_profile(picture=other_picture))
    responses.get(PICTURE, body=PNG)
    responses.get(other_picture, body=PNG + b"\x00")
    deliver(client, worker, "facebook", "message")
    first = Contact.get().avatar_key

    Contact.update(profile_fetched_at=None).execute()
    deliver(client, worker, "facebook", another_message("facebook", "message", 1))

    second = Contact.get().avatar_key
    assert second != first
    assert storage.read(second) == PNG + b"\x00"
    assert not (storage.root / first).exists()


# -- TikTok ------------------------------------------------------------------------------------


@responses.activate
def test_a_tiktok_customer_is_named_from_the_conversation_s_participants(client, worker, storage):
    responses.get(
        PARTICIPANTS,
        json=tiktok_participants(),
        match=[
            matchers.query_param_matcher(
                {
                    "business_id": "7312345678901",
                    "conversation_id": "0:1:7312345678901:7299887766554433221",
                }
            ),
            matchers.header_matcher({"Access-Token": "tiktok-access-token"}),
        ],
    )
    responses.get(TIKTOK_PICTURE, body=PNG)

    deliver(client, worker, "tiktok", "im_receive_msg")

    contact = Contact.get()
    assert (contact.display_name, contact.username) == ("Mariana Souza", "mariana.souza")
    assert storage.read(contact.avatar_key) == PNG


@responses.activate
def test_the_handle_in_later_tiktok_messages_keeps_the_name_from_the_profile(client, worker):
    responses.get(PARTICIPANTS, json=tiktok_participants())
    responses.get(TIKTOK_PICTURE, body=PNG)
    deliver(client, worker, "tiktok", "im_receive_msg")

    deliver(client, worker, "tiktok", another_message("tiktok", "im_receive_msg", 1))

    assert Contact.get().display_name == "Mariana Souza"


@responses.activate
def test_a_tiktok_conversation_that_does_not_name_the_customer_changes_nothing(client, worker):
    responses.get(PARTICIPANTS, json=tiktok_answer({"participants": [], "messages": []}))

    deliver(client, worker, "tiktok", "im_receive_msg")

    contact = Contact.get()
    assert (contact.display_name, contact.avatar_key) == ("mariana.souza", None)


# -- WhatsApp ----------------------------------------------------------------------------------


@responses.activate
def test_whatsapp_names_customers_in_its_webhooks_and_is_never_asked(client, worker):
    deliver(client, worker, "whatsapp", "text")

    assert Contact.get().display_name == "Zoë Ångström"
    assert not responses.calls
    assert Contact.get().profile_fetched_at is None
