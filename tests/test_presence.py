"""Who else is here: records per page, one entry per staff member, the presence API.

The socket's side (what a page says and hears) is tested through a real socket in
``tests/test_live_socket.py``.
"""

import time

import pytest

from app import presence
from app.auth import hash_password
from app.models import User
from app.presence import Record
from app.redis_client import get_redis
from tests.fixtures import make_connection
from tests.platform_fakes import conversation

NOW = 1_800_000_000.0


def record(user_id, viewing_since, typing_since=None, *, email=None, expires=NOW + 30):
    return Record(
        user_id=user_id,
        email=email or f"staff{user_id}@acme.test",
        viewing_since=viewing_since,
        expires=expires,
        typing_since=typing_since,
        typing_until=None if typing_since is None else typing_since + presence.TYPING_SECONDS,
    )


def test_a_staff_member_with_several_pages_is_one_entry_typing_on_any_wins():
    found = [
        record(1, NOW - 60),
        record(1, NOW - 20, typing_since=NOW - 2),
        record(2, NOW - 90),
    ]
    assert presence.entries(found, NOW) == [
        {
            "user": {"id": 2, "email": "staff2@acme.test"},
            "state": "viewing",
            "since": "2027-01-15T07:58:30.000Z",
        },
        {
            "user": {"id": 1, "email": "staff1@acme.test"},
            "state": "typing",
            "since": "2027-01-15T07:59:58.000Z",
        },
    ]


def test_typing_that_stopped_long_enough_ago_is_viewing_since_the_page_opened():
    stopped = record(1, NOW - 60, typing_since=NOW - presence.TYPING_SECONDS - 1)
    (entry,) = presence.entries([stopped], NOW)
    assert (entry["state"], entry["since"]) == ("viewing", "2027-01-15T07:59:00.000Z")


def test_a_record_its_page_stopped_refreshing_is_gone_and_dropped(org):
    now = time.time()
    presence.save(org.id, 7, "open", record(1, now, expires=now + 30))
    presence.save(org.id, 7, "gone", record(2, now - 90, expires=now - 1))

    assert [r.user_id for r in presence.records(org.id, 7, now)] == [1]
    assert get_redis().hkeys(f"snorq:presence:{org.id}:7") == [b"open"]
    assert 0 < get_redis().ttl(f"snorq:presence:{org.id}:7") <= presence.TTL_SECONDS


# -- GET /api/v1/conversations/<id>/presence ---------------------------------------------


@pytest.fixture
def thread(org, connections):
    return conversation(org, connections["whatsapp"])


def test_the_api_lists_the_other_staff_in_the_conversation_and_never_the_caller(
    client, api_headers, org, user, thread
):
    colleague = User.create(
        organization=org, email="bea@acme.test", password_hash=hash_password("pw")
    )
    now = time.time()
    presence.save(org.id, thread.id, "mine", record(user.id, now - 5, expires=now + 30))
    typing = record(colleague.id, now - 30, now - 1, email=colleague.email, expires=now + 30)
    presence.save(org.id, thread.id, "theirs", typing)

    response = client.get(f"/api/v1/conversations/{thread.id}/presence", headers=api_headers)

    assert response.status_code == 200
    (entry,) = response.get_json()["presence"]
    assert entry["user"] == {"id": colleague.id, "email": "bea@acme.test"}
    assert entry["state"] == "typing" and entry["since"].endswith("Z")


def test_nobody_there_is_an_empty_list(client, api_headers, thread):
    response = client.get(f"/api/v1/conversations/{thread.id}/presence", headers=api_headers)
    assert response.get_json() == {"presence": []}


def test_another_organizations_conversation_has_no_presence_to_show(client, api_headers, other_org):
    theirs = conversation(other_org, make_connection(other_org, "whatsapp", "999"))
    now = time.time()
    presence.save(other_org.id, theirs.id, "theirs", record(99, now, expires=now + 30))
    response = client.get(f"/api/v1/conversations/{theirs.id}/presence", headers=api_headers)
    assert response.status_code == 404


def test_the_presence_api_needs_credentials(client, thread):
    assert client.get(f"/api/v1/conversations/{thread.id}/presence").status_code == 401
