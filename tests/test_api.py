"""The staff JSON API: credentials, organization scope, filters, pagination, CSRF, events."""

import datetime

import pytest

from app import live
from app.db import utcnow
from app.models import Contact, Conversation, Direction, Message, MessageStatus
from tests.fixtures import make_connection

REPLY = {"content": "Hello"}
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'

ROUTES = [
    ("GET", "/api/v1/conversations"),
    ("GET", "/api/v1/conversations/{conversation}"),
    ("GET", "/api/v1/conversations/{conversation}/messages"),
    ("POST", "/api/v1/conversations/{conversation}/read"),
    ("GET", "/api/v1/connections"),
    ("GET", "/api/v1/events?since=0"),
]

#: Routes that act on one conversation or message: another organization's answers 404.
FOREIGN_ROUTES = [route for route in ROUTES if "{conversation}" in route[1]] + [
    ("POST", "/api/v1/conversations/{conversation}/messages"),
    ("POST", "/api/v1/conversations/{conversation}/typing"),
    ("POST", "/api/v1/messages/{message}/retry"),
]


def make_conversation(
    connection,
    name: str,
    *,
    minutes_ago: float = 0,
    unread: int = 0,
    inbound_hours_ago: float | None = 1,
) -> Conversation:
    """A conversation with one customer of ``connection``, last active ``minutes_ago``."""
    now = utcnow()
    contact = Contact.create(
        organization=connection.organization_id,
        platform=connection.platform,
        external_id=f"{connection.platform}-{name}",
        display_name=name,
    )
    return Conversation.create(
        organization=connection.organization_id,
        connection=connection,
        contact=contact,
        last_message_preview=f"Hello from {name}",
        last_message_at=now - datetime.timedelta(minutes=minutes_ago),
        last_inbound_at=None
        if inbound_hours_ago is None
        else now - datetime.timedelta(hours=inbound_hours_ago),
        unread_count=unread,
    )


def add_message(conversation, content: str, direction: str = Direction.INBOUND) -> Message:
    status = MessageStatus.RECEIVED if direction == Direction.INBOUND else MessageStatus.SENT
    return Message.create(
        organization=conversation.organization_id,
        connection=conversation.connection_id,
        conversation=conversation,
        direction=direction,
        content=content,
        status=status,
    )


def call(client, method: str, path: str, **kwargs):
    return client.open(path, method=method, **kwargs)


@pytest.fixture
def conversation(connections):
    return make_conversation(connections["whatsapp"], "Zoë", unread=2)


@pytest.fixture
def foreign_conversation(other_org):
    return make_conversation(make_connection(other_org, "whatsapp", "999"), "Stranger", unread=1)


@pytest.fixture
def session_client(client, user):
    """A client signed in through the session cookie, with a known CSRF token."""
    with client.session_transaction() as session:
        session["user_id"] = user.id
        session["csrf"] = "the-csrf-token"
    return client


# -- credentials -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES + FOREIGN_ROUTES)
def test_every_route_answers_401_without_credentials(client, conversation, method, path):
    response = call(client, method, path.format(conversation=conversation.id, message=1))
    assert response.status_code == 401
    assert response.json == {"error": "authentication required"}


@pytest.mark.parametrize("token", ["snorq_not-a-real-token", "garbage", ""])
def test_an_unknown_bearer_token_is_refused(client, user, token):
    response = client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_works_with_an_api_token(client, api_headers, conversation, method, path):
    response = call(client, method, path.format(conversation=conversation.id), headers=api_headers)
    assert response.status_code == 200


# -- organization scope ------------------------------------------------------------------


@pytest.fixture
def foreign_paths(foreign_conversation):
    """Fill a route with another organization's conversation and failed reply."""
    failed = add_message(foreign_conversation, "not yours", Direction.OUTBOUND)
    Message.update(status=MessageStatus.FAILED).where(Message.id == failed.id).execute()
    return lambda path: path.format(conversation=foreign_conversation.id, message=failed.id)


@pytest.mark.parametrize(("method", "path"), FOREIGN_ROUTES)
def test_another_organizations_conversation_or_message_answers_404(
    client, api_headers, foreign_paths, method, path
):
    response = call(client, method, foreign_paths(path), headers=api_headers, json=REPLY)
    assert response.status_code == 404
    assert response.is_json


@pytest.mark.parametrize(("method", "path"), FOREIGN_ROUTES)
def test_one_that_does_not_exist_answers_the_same_404(
    client, api_headers, foreign_paths, method, path
):
    foreign = call(client, method, foreign_paths(path), headers=api_headers, json=REPLY)
    missing = call(
        client,
        method,
        path.format(conversation=987654, message=987654),
        headers=api_headers,
        json=REPLY,
    )
    assert (missing.status_code, missing.json) == (foreign.status_code, foreign.json)


def test_nothing_is_sent_or_retried_in_another_organization(
    client, api_headers, foreign_conversation, foreign_paths
):
    for path in (
        "/api/v1/conversations/{conversation}/messages",
        "/api/v1/messages/{message}/retry",
    ):
        client.post(foreign_paths(path), headers=api_headers, json=REPLY)
    statuses = [
        m.status for m in Message.select().where(Message.conversation == foreign_conversation.id)
    ]
    assert statuses == [MessageStatus.FAILED]
    assert live.latest_seq(foreign_conversation.organization_id) == 0


def test_marking_another_organizations_conversation_read_changes_nothing(
    client, api_headers, foreign_conversation
):
    client.post(f"/api/v1/conversations/{foreign_conversation.id}/read", headers=api_headers)
    assert Conversation.get_by_id(foreign_conversation.id).unread_count == 1
    assert live.latest_seq(foreign_conversation.organization_id) == 0


def test_conversation_list_holds_only_the_callers_organization(
    client, api_headers, conversation, foreign_conversation
):
    listed = client.get("/api/v1/conversations", headers=api_headers).json["conversations"]
    assert [c["id"] for c in listed] == [conversation.id]


def test_connection_list_holds_only_the_callers_organization(
    client, api_headers, connections, other_org
):
    make_connection(other_org, "facebook", "555")
    listed = client.get("/api/v1/connections", headers=api_headers).json["connections"]
    assert sorted(c["id"] for c in listed) == sorted(c.id for c in connections.values())
    assert {c["account_id"] for c in listed} == {c.account_id for c in connections.values()}


def test_events_hold_only_the_callers_organization(client, api_headers, org, other_org):
    live.publish(other_org.id, "conversation:read", {"conversation_id": 1, "unread_count": 0})
    live.publish(org.id, "conversation:read", {"conversation_id": 2, "unread_count": 0})
    body = client.get("/api/v1/events?since=0", headers=api_headers).json
    assert [e["data"]["conversation_id"] for e in body["events"]] == [2]
    assert body["latest"] == 1


def test_another_organizations_messages_never_appear(client, api_headers, conversation, other_org):
    foreign = make_conversation(make_connection(other_org, "facebook", "777"), "Stranger")
    add_message(foreign, "secret")
    add_message(conversation, "mine")
    response = client.get(f"/api/v1/conversations/{conversation.id}/messages", headers=api_headers)
    assert [m["content"] for m in response.json["messages"]] == ["mine"]


# -- filters and pagination --------------------------------------------------------------


def test_conversations_filter_by_platform(client, api_headers, connections):
    for platform, connection in connections.items():
        make_conversation(connection, f"{platform} customer")
    response = client.get("/api/v1/conversations?platform=tiktok", headers=api_headers)
    assert [c["platform"] for c in response.json["conversations"]] == ["tiktok"]


@pytest.mark.parametrize("flag", ["1", "true"])
def test_conversations_filter_by_unread(client, api_headers, connections, flag):
    unread = make_conversation(connections["facebook"], "Unread", unread=3)
    make_conversation(connections["facebook"], "Read", unread=0)
    response = client.get(f"/api/v1/conversations?unread={flag}", headers=api_headers)
    assert [c["id"] for c in response.json["conversations"]] == [unread.id]


def test_conversations_are_newest_first_and_cursor_pages_cover_each_once(
    client, api_headers, connections
):
    made = [
        make_conversation(connections["whatsapp"], f"customer {n}", minutes_ago=n // 2)
        for n in range(7)
    ]
    # Pairs share a timestamp, so the order must break ties by id (newest id first).
    at = {c.id: c.last_message_at for c in made}
    expected = sorted(at, key=lambda cid: (at[cid], cid), reverse=True)
    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(f"/api/v1/conversations{query}", headers=api_headers).json
        seen += [c["id"] for c in body["conversations"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3


def test_filters_and_cursor_combine(client, api_headers, connections):
    for n in range(4):
        make_conversation(connections["tiktok"], f"tt {n}", minutes_ago=n, unread=n % 2)
        make_conversation(connections["facebook"], f"fb {n}", minutes_ago=n, unread=1)
    first = client.get(
        "/api/v1/conversations?platform=tiktok&unread=1&limit=1", headers=api_headers
    ).json
    second = client.get(
        f"/api/v1/conversations?platform=tiktok&unread=1&limit=1&cursor={first['next_cursor']}",
        headers=api_headers,
    ).json
    names = [c["contact"]["display_name"] for c in first["conversations"] + second["conversations"]]
    assert names == ["tt 1", "tt 3"]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("query", ["cursor=not-a-cursor", "cursor=%25%25", "limit=many"])
def test_a_malformed_cursor_or_limit_answers_400(client, api_headers, query):
    response = client.get(f"/api/v1/conversations?{query}", headers=api_headers)
    assert response.status_code == 400
    assert "error" in response.json


def test_messages_come_oldest_first_and_page_backwards(client, api_headers, conversation):
    made = [add_message(conversation, f"message {n}") for n in range(5)]
    path = f"/api/v1/conversations/{conversation.id}/messages"
    latest = client.get(f"{path}?limit=2", headers=api_headers).json["messages"]
    assert [m["content"] for m in latest] == ["message 3", "message 4"]
    earlier = client.get(f"{path}?limit=2&before={latest[0]['id']}", headers=api_headers).json
    assert [m["id"] for m in earlier["messages"]] == [made[1].id, made[2].id]


@pytest.mark.parametrize("listing", ["messages", "notes"])
@pytest.mark.parametrize("before", [2**70, -5, 0])
def test_a_page_before_an_id_no_row_can_have_is_a_clear_400(
    client, api_headers, conversation, listing, before
):
    path = f"/api/v1/conversations/{conversation.id}/{listing}?before={before}"
    response = client.get(path, headers=api_headers)
    assert response.status_code == 400
    assert "before must be the id" in response.json["error"]


def test_message_content_comes_back_as_data_exactly_as_written(client, api_headers, conversation):
    add_message(conversation, HOSTILE)
    response = client.get(f"/api/v1/conversations/{conversation.id}/messages", headers=api_headers)
    assert response.mimetype == "application/json"
    assert response.json["messages"][0]["content"] == HOSTILE


def test_a_message_says_when_the_customer_sent_it_as_well_as_when_snorq_stored_it(
    client, api_headers, conversation
):
    written = add_message(conversation, "Sent from the bus, no signal")
    sent_at = written.created_at - datetime.timedelta(minutes=7)
    Message.update(platform_timestamp=sent_at).where(Message.id == written.id).execute()
    add_message(conversation, "A reply", Direction.OUTBOUND)

    path = f"/api/v1/conversations/{conversation.id}/messages"
    inbound, outbound = client.get(path, headers=api_headers).json["messages"]
    assert inbound["platform_timestamp"] == sent_at.isoformat(timespec="milliseconds") + "Z"
    assert inbound["created_at"] == written.created_at.isoformat(timespec="milliseconds") + "Z"
    assert outbound["platform_timestamp"] is None


def test_a_conversation_says_when_its_messaging_window_closes(client, api_headers, connections):
    fresh = make_conversation(connections["whatsapp"], "Fresh", inbound_hours_ago=2)
    stale = make_conversation(connections["tiktok"], "Stale", inbound_hours_ago=50)
    silent = make_conversation(connections["whatsapp"], "Silent", inbound_hours_ago=None)
    for conversation, can_reply, hours in ((fresh, True, 24), (stale, False, 48)):
        body = client.get(f"/api/v1/conversations/{conversation.id}", headers=api_headers).json
        closes = conversation.last_inbound_at + datetime.timedelta(hours=hours)
        assert body["conversation"]["can_reply"] is can_reply
        assert (
            body["conversation"]["window_closes_at"]
            == closes.isoformat(timespec="milliseconds") + "Z"
        )
    body = client.get(f"/api/v1/conversations/{silent.id}", headers=api_headers).json
    assert body["conversation"]["window_closes_at"] is None
    assert body["conversation"]["can_reply"] is False


# -- marking read and CSRF for the session -----------------------------------------------


def test_marking_read_zeroes_the_count_and_tells_the_other_pages(client, api_headers, conversation):
    response = client.post(f"/api/v1/conversations/{conversation.id}/read", headers=api_headers)
    assert response.json == {"conversation_id": conversation.id, "unread_count": 0}
    assert Conversation.get_by_id(conversation.id).unread_count == 0
    events, _ = live.events_since(conversation.organization_id, 0)
    assert [(e["type"], e["data"]) for e in events] == [
        ("conversation:read", {"conversation_id": conversation.id, "unread_count": 0})
    ]


@pytest.mark.parametrize("headers", [{}, {"X-CSRF-Token": "a-guess"}, {"X-CSRF-Token": ""}])
def test_a_session_change_without_the_csrf_token_is_refused(session_client, conversation, headers):
    response = session_client.post(f"/api/v1/conversations/{conversation.id}/read", headers=headers)
    assert response.status_code == 403
    assert Conversation.get_by_id(conversation.id).unread_count == 2


def test_a_session_reply_without_the_csrf_token_is_not_sent(session_client, conversation):
    response = session_client.post(f"/api/v1/conversations/{conversation.id}/messages", json=REPLY)
    assert response.status_code == 403
    assert not Message.select().where(Message.conversation == conversation.id).exists()


def test_a_session_change_with_the_csrf_token_goes_through(session_client, conversation):
    response = session_client.post(
        f"/api/v1/conversations/{conversation.id}/read",
        headers={"X-CSRF-Token": "the-csrf-token"},
    )
    assert response.status_code == 200
    assert Conversation.get_by_id(conversation.id).unread_count == 0


def test_session_reads_need_no_csrf_token(session_client, conversation):
    assert session_client.get("/api/v1/conversations").status_code == 200


def test_token_requests_need_no_csrf_token(client, api_headers, conversation):
    response = client.post(f"/api/v1/conversations/{conversation.id}/read", headers=api_headers)
    assert response.status_code == 200


def test_the_session_sees_only_its_own_organization(session_client, foreign_conversation):
    response = session_client.get(f"/api/v1/conversations/{foreign_conversation.id}")
    assert response.status_code == 404


# -- events since a sequence number ------------------------------------------------------


def test_events_since_return_what_came_after_in_order(client, api_headers, org):
    for n in range(4):
        live.publish(org.id, "conversation:read", {"conversation_id": n, "unread_count": 0})
    body = client.get("/api/v1/events?since=2", headers=api_headers).json
    assert [e["seq"] for e in body["events"]] == [3, 4]
    assert [e["data"]["conversation_id"] for e in body["events"]] == [2, 3]
    assert body["latest"] == 4
    assert body["complete"] is True


def test_events_published_together_are_numbered_in_order_in_each_organizations_log(
    client, api_headers, org, other_org
):
    read = {"conversation_id": 1, "unread_count": 0}
    numbers = live.publish_all(
        [(org.id, "conversation:read", read), (other_org.id, "note:new", {}), (org.id, "x", {})]
    )

    assert numbers == [1, 1, 2]
    body = client.get("/api/v1/events?since=0", headers=api_headers).json
    assert [(e["seq"], e["type"]) for e in body["events"]] == [(1, "conversation:read"), (2, "x")]
    note = {"seq": 1, "type": "note:new", "data": {}}
    assert live.events_since(other_org.id, 0) == ([note], True)
    assert live.publish_all([]) == []


def test_events_say_when_the_log_no_longer_reaches_back(client, api_headers, org, monkeypatch):
    monkeypatch.setattr(live, "RETAINED_EVENTS", 2)
    for n in range(5):
        live.publish(org.id, "conversation:read", {"conversation_id": n, "unread_count": 0})
    body = client.get("/api/v1/events?since=1", headers=api_headers).json
    assert body["complete"] is False
    assert body["latest"] == 5
    assert client.get("/api/v1/events?since=3", headers=api_headers).json["complete"] is True
