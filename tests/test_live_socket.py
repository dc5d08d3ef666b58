"""``/ws`` through a real threaded server: who may connect, what each page gets, and when."""

import json
import socket
import threading
import time

import pytest
from simple_websocket import Client, ConnectionError
from werkzeug.serving import make_server

from app import live, presence
from app.auth import hash_password
from app.models import User
from app.web import live_socket

ORIGIN = "http://127.0.0.1"  # the test client's Host header carries no port


@pytest.fixture
def server(app):
    """The app on a threaded Werkzeug server (as ``snorq run`` serves it)."""
    running = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{running.server_port}"
    running.shutdown()
    thread.join(5)


def session_cookie(app, user) -> str:
    value = app.session_interface.get_signing_serializer(app).dumps({"user_id": user.id})
    return f"{app.config['SESSION_COOKIE_NAME']}={value}"


def connect(server, query="since=0", **headers) -> Client:
    return Client.connect(f"ws://{server}/ws?{query}", headers=headers)


@pytest.fixture
def page(app, server, user):
    """A signed-in page's socket, opened as the page opens it."""
    sockets = []

    def open_socket(query="since=0", origin=ORIGIN) -> Client:
        ws = connect(server, query, Cookie=session_cookie(app, user), Origin=origin)
        sockets.append(ws)
        return ws

    yield open_socket
    for ws in sockets:
        if ws.connected:
            ws.close()
    # The next test's organization may get the same id: let these sockets finish first.
    assert wait_until(lambda: subscribers(user.organization_id) == 0)


def receive(ws, timeout=5.0) -> dict:
    raw = ws.receive(timeout=timeout)
    assert raw is not None, "no message in time"
    return json.loads(raw)


def read(organization_id, conversation_id):
    live.publish(
        organization_id,
        "conversation:read",
        {"conversation_id": conversation_id, "unread_count": 0},
    )


def subscribers(organization_id) -> int:
    return len(live.hub._queues.get(organization_id, ()))


def wait_until(condition, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def subscribed(ws, organization_id):
    """Wait until the socket's subscription is live (events from now on are pushed)."""
    assert wait_until(lambda: subscribers(organization_id) > 0)
    return ws


# -- who may connect ---------------------------------------------------------------------


def test_a_socket_without_a_session_is_refused(server):
    with pytest.raises(ConnectionError) as refused:
        connect(server, Origin=ORIGIN)
    assert refused.value.status_code == 401


def test_an_api_token_does_not_open_a_socket(server, api_headers):
    with pytest.raises(ConnectionError) as refused:
        connect(server, Origin=ORIGIN, **api_headers)
    assert refused.value.status_code == 401


@pytest.mark.parametrize(
    "origin", ["http://evil.test", "http://127.0.0.1.evil.test", "null", "file://", ""]
)
def test_a_socket_from_another_site_is_refused(app, server, user, origin):
    with pytest.raises(ConnectionError) as refused:
        connect(server, Cookie=session_cookie(app, user), Origin=origin)
    assert refused.value.status_code == 403


def test_the_sites_published_address_is_a_valid_origin(page, user):
    read(user.organization_id, 6)
    ws = subscribed(page("since=1", origin="http://snorq.test"), user.organization_id)
    read(user.organization_id, 7)
    assert receive(ws)["data"]["conversation_id"] == 7


# -- what each page gets -----------------------------------------------------------------


def test_a_page_gets_its_own_organizations_events_and_no_others(page, user, other_org):
    read(user.organization_id, 1)
    ws = subscribed(page("since=1"), user.organization_id)
    read(other_org.id, 2)
    read(user.organization_id, 3)
    event = receive(ws)
    assert (event["seq"], event["type"], event["data"]["conversation_id"]) == (
        2,
        "conversation:read",
        3,
    )
    assert ws.receive(timeout=0.5) is None


def test_a_page_first_gets_what_it_missed_then_what_happens(page, user):
    for conversation_id in range(3):
        read(user.organization_id, conversation_id)
    ws = subscribed(page("since=1"), user.organization_id)
    read(user.organization_id, 3)
    assert [receive(ws)["seq"] for _ in range(3)] == [2, 3, 4]


def test_every_event_arrives_once_and_in_order(page, user):
    read(user.organization_id, 0)
    ws = subscribed(page("since=1"), user.organization_id)
    for conversation_id in range(40):
        read(user.organization_id, conversation_id)
    assert [receive(ws)["seq"] for _ in range(40)] == list(range(2, 42))
    assert ws.receive(timeout=0.5) is None


def test_a_page_with_no_position_starts_from_now(page, user, monkeypatch):
    monkeypatch.setattr(live_socket, "HEARTBEAT_SECONDS", 1)
    read(user.organization_id, 1)
    ws = page(query="")
    # The first heartbeat says the socket has taken its position and is waiting.
    assert receive(ws) == {"type": "heartbeat"}
    read(user.organization_id, 2)
    assert receive(ws)["seq"] == 2


def test_a_page_too_far_behind_is_told_to_reload(page, user, monkeypatch):
    monkeypatch.setattr(live, "RETAINED_EVENTS", 2)
    for conversation_id in range(5):
        read(user.organization_id, conversation_id)
    ws = page("since=1")
    assert receive(ws) == {"type": "reset", "seq": 5}
    subscribed(ws, user.organization_id)
    read(user.organization_id, 5)
    assert receive(ws)["seq"] == 6


def test_a_page_ahead_of_the_log_is_told_to_reload(page, user):
    read(user.organization_id, 1)
    assert receive(page("since=40")) == {"type": "reset", "seq": 1}


def test_a_quiet_socket_sends_heartbeats(page, user, monkeypatch):
    monkeypatch.setattr(live_socket, "HEARTBEAT_SECONDS", 1)
    assert receive(page()) == {"type": "heartbeat"}


# -- when a socket ends ------------------------------------------------------------------


def test_a_closed_page_releases_its_subscription(page, user):
    ws = subscribed(page(), user.organization_id)
    ws.close()
    assert wait_until(lambda: subscribers(user.organization_id) == 0)


def test_a_client_that_stops_answering_pings_is_dropped(app, server, user):
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 0.3}
    host, port = server.split(":")
    silent = socket.create_connection((host, int(port)))
    handshake = (
        "GET /ws?since=0 HTTP/1.1\r\n"
        f"Host: {server}\r\nOrigin: http://{server}\r\n"
        f"Cookie: {session_cookie(app, user)}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    silent.sendall(handshake.encode())
    assert silent.recv(1024).startswith(b"HTTP/1.1 101")
    try:
        assert wait_until(lambda: subscribers(user.organization_id) == 1)
        assert wait_until(lambda: subscribers(user.organization_id) == 0)
    finally:
        silent.close()


def test_a_socket_closes_after_its_time_so_the_page_signs_in_again(page, user, monkeypatch):
    monkeypatch.setattr(live_socket, "MAX_SOCKET_SECONDS", 0)
    ws = page()
    assert wait_until(lambda: not ws.connected)
    assert subscribers(user.organization_id) == 0


# -- who else is here --------------------------------------------------------------------

CONVERSATION = 41


def staff(org, email: str):
    return User.create(organization=org, email=email, password_hash=hash_password("pw"))


@pytest.fixture
def colleague(org):
    return staff(org, "bea@acme.test")


@pytest.fixture
def open_as(app, server):
    """``open_as(user)``: a page of that staff member, its socket open and subscribed."""
    sockets = []

    def open_socket(user) -> Client:
        ws = connect(server, "since=0", Cookie=session_cookie(app, user), Origin=ORIGIN)
        sockets.append((ws, user.organization_id))
        return subscribed(ws, user.organization_id)

    yield open_socket
    for ws, _ in sockets:
        if ws.connected:
            ws.close()
    assert wait_until(lambda: all(subscribers(org_id) == 0 for _, org_id in sockets))


def say(ws, conversation_id, state="viewing"):
    ws.send(json.dumps({"type": "presence", "conversation_id": conversation_id, "state": state}))


def here(user, conversation_id=CONVERSATION) -> list[dict]:
    """Who the API would tell anyone but ``user`` is in the conversation."""
    return presence.present(user.organization_id, conversation_id, excluding=-1)


def viewing(ws, user, conversation_id=CONVERSATION):
    """The page of ``user`` shows the conversation, and the server has acted on it."""
    say(ws, conversation_id)
    assert wait_until(lambda: any(e["user"]["id"] == user.id for e in here(user, conversation_id)))


def presence_of(event) -> tuple:
    data = event["data"]
    return event["type"], data["conversation_id"], data["user"]["email"], data["state"]


def test_a_page_opening_a_conversation_hears_who_is_already_there_and_they_hear_of_it(
    open_as, user, colleague
):
    ana = open_as(user)
    viewing(ana, user)
    bea = open_as(colleague)

    say(bea, CONVERSATION)

    told = receive(bea)
    assert presence_of(told) == ("presence", CONVERSATION, user.email, "viewing")
    assert set(told["data"]) == {"conversation_id", "user", "state", "since"}
    assert told["data"]["user"] == {"id": user.id, "email": user.email}
    assert "seq" not in told
    assert presence_of(receive(ana)) == ("presence", CONVERSATION, colleague.email, "viewing")


def test_typing_is_relayed_and_ends_by_itself_once_the_typing_stops(
    open_as, user, colleague, monkeypatch
):
    monkeypatch.setattr(presence, "TYPING_SECONDS", 1)
    ana = open_as(user)
    viewing(ana, user)
    bea = open_as(colleague)
    viewing(bea, colleague)
    assert presence_of(receive(ana))[3] == "viewing"

    say(bea, CONVERSATION, "typing")

    typing = receive(ana)
    assert presence_of(typing) == ("presence", CONVERSATION, colleague.email, "typing")
    assert presence_of(receive(ana))[3] == "viewing"


def test_closing_the_page_or_opening_another_conversation_takes_its_presence_away(
    open_as, user, colleague
):
    ana = open_as(user)
    viewing(ana, user)
    bea = open_as(colleague)
    viewing(bea, colleague)
    receive(ana)

    say(bea, CONVERSATION + 1)
    assert presence_of(receive(ana)) == ("presence", CONVERSATION, colleague.email, None)
    viewing(bea, colleague)
    assert presence_of(receive(ana))[3] == "viewing"
    bea.close()
    assert presence_of(receive(ana)) == ("presence", CONVERSATION, colleague.email, None)
    assert [e["user"]["email"] for e in here(user)] == [user.email]


def test_a_page_only_hears_of_the_conversation_it_shows(open_as, user, colleague):
    ana = open_as(user)
    viewing(ana, user, CONVERSATION + 1)
    bea = open_as(colleague)

    viewing(bea, colleague)

    assert ana.receive(timeout=1.5) is None


def test_a_staff_member_never_hears_of_themself_even_from_their_other_page(open_as, user):
    first = open_as(user)
    viewing(first, user)
    second = open_as(user)

    say(second, CONVERSATION, "typing")
    assert wait_until(lambda: here(user)[0]["state"] == "typing")

    assert first.receive(timeout=1.5) is None
    assert second.receive(timeout=0.1) is None


def test_another_organizations_staff_never_hear_of_it(open_as, user, other_org):
    stranger = staff(other_org, "eve@globex.test")
    theirs = open_as(stranger)
    viewing(theirs, stranger)
    ana = open_as(user)

    viewing(ana, user)
    say(ana, CONVERSATION, "typing")

    assert theirs.receive(timeout=1.5) is None
    assert ana.receive(timeout=0.1) is None
    assert [e["user"]["id"] for e in here(user)] == [user.id]
    assert [e["user"]["id"] for e in here(stranger)] == [stranger.id]


@pytest.mark.parametrize(
    "said",
    [
        "not json",
        '{"type": "presence", "conversation_id": "41"}',
        '{"type": "presence", "conversation_id": 41, "state": "shouting"}',
        '{"type": "presence", "conversation_id": -3}',
        '["presence", 41]',
    ],
)
def test_what_the_page_says_wrongly_is_ignored(open_as, user, said):
    ana = open_as(user)
    ana.send(said)
    viewing(ana, user, CONVERSATION + 1)
    assert here(user) == []


def test_presence_kept_and_announced_by_another_web_process_reaches_the_page(
    open_as, user, colleague
):
    now = time.time()
    elsewhere = presence.Record(colleague.id, colleague.email, now - 60, expires=now + 30)
    presence.save(user.organization_id, CONVERSATION, "a-page-on-another-process", elsewhere)
    ana = open_as(user)

    say(ana, CONVERSATION)
    assert presence_of(receive(ana)) == ("presence", CONVERSATION, colleague.email, "viewing")

    typing = {
        "conversation_id": CONVERSATION,
        "user": {"id": colleague.id, "email": colleague.email},
    }
    live.announce(user.organization_id, "presence", {**typing, "state": "typing", "since": None})
    assert presence_of(receive(ana)) == ("presence", CONVERSATION, colleague.email, "typing")


def test_an_open_page_refreshes_its_presence_so_it_outlives_the_records_lifetime(
    open_as, user, colleague, monkeypatch
):
    monkeypatch.setattr(presence, "REFRESH_SECONDS", 1)
    ana = open_as(user)
    viewing(ana, user)
    bea = open_as(colleague)
    viewing(bea, colleague)
    assert presence_of(receive(ana))[3] == "viewing"

    again = [presence_of(receive(ana, timeout=3)) for _ in range(2)]

    assert again == [("presence", CONVERSATION, colleague.email, "viewing")] * 2
    (record,) = [
        r
        for r in presence.records(user.organization_id, CONVERSATION, time.time())
        if r.user_id == colleague.id
    ]
    assert record.expires > time.time() + presence.TTL_SECONDS - 2
