"""``/ws`` through a real threaded server: who may connect, what each page gets, and when."""

import json
import socket
import threading
import time

import pytest
from simple_websocket import Client, ConnectionError
from werkzeug.serving import make_server

from app import live
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
