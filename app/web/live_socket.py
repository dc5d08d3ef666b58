"""``/ws``: the organization's live events, pushed to a signed-in staff page.

The page connects with ``?since=<the last sequence number it has>``. The socket
subscribes first and then reads the organization's event log from that number,
so nothing published in between is lost. From then on a published event only
wakes the socket, which reads the log again from the last number it sent: the
page gets every event once, in order, whatever the subscription dropped. When
the log no longer reaches back far enough, the page gets ``{"type": "reset",
"seq": N}``: reload, then continue after N.

The page says over the socket which conversation it shows and when its user
types; the socket keeps that page's presence (``app/presence.py``) and passes on
the other staff members' presence in that conversation as it is announced
(``presence`` events, without a sequence number).

Only the session cookie authenticates (a token in a URL ends up in logs), and the
``Origin`` must be this site, since browsers send cookies on cross-site
websocket handshakes too. Each socket holds a server thread, so a socket that
stops answering pings is closed, and every socket closes after a while to be
re-authorized when the page reconnects.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import redis
from flask import Blueprint, Flask, abort, current_app, g, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed, Server

from app import live, metrics, presence
from app.db import database
from app.web.access import current_user

log = logging.getLogger(__name__)

bp = Blueprint("live_socket", __name__)
sock = Sock()

#: Ping the client this often; one unanswered ping closes the socket.
PING_SECONDS = 25
#: After this long with nothing sent, send ``{"type": "heartbeat"}``, so the page
#: notices a connection that died silently.
HEARTBEAT_SECONDS = 25
#: Close a socket after about this long (spread out, so pages that connected
#: together do not all come back at once); the page reconnects and is authorized again.
MAX_SOCKET_SECONDS = 15 * 60
#: A longer backlog is replaced by a reset: reloading is cheaper than replaying.
MAX_BACKLOG = 500
#: The page only says where it is (a few dozen bytes of presence).
MAX_MESSAGE_BYTES = 1024

HEARTBEAT = json.dumps({"type": "heartbeat"})


@bp.before_request
def _authorize():
    """Refuse the handshake, before it is accepted, from other sites and without a session."""
    if not _same_origin(request.headers.get("Origin", "")):
        abort(403)
    if current_user() is None or g.get("authenticated_by") != "session":
        abort(401)


def _same_origin(origin: str) -> bool:
    """Whether ``origin`` is this site, as the request reached it or as it is published."""
    parts = urlsplit(origin)
    published = urlsplit(current_app.config["SNORQ_SETTINGS"].public_url).netloc
    return parts.scheme in {"http", "https"} and parts.netloc in {request.host, published}


@sock.route("/ws", bp=bp)
def live_events(ws: Server) -> None:
    """Push the organization's events to one staff page until it goes."""
    user = current_user()
    since = request.args.get("since", type=int)
    # The socket may stay open for minutes; it must not hold a pooled connection.
    if not database.is_closed():
        database.close()
    here = presence.Page(
        user.organization_id, user.id, user.email, lambda event: ws.send(json.dumps(event))
    )
    try:
        with metrics.LIVE_CONNECTIONS.track_inprogress():
            _stream(ws, here, since)
    except (ConnectionClosed, OSError):
        pass
    except redis.RedisError:
        log.warning("Live events unavailable; closing the socket so the page reconnects")


def _stream(ws: Server, here: presence.Page, since: int | None) -> None:
    """Send the events after ``since``, then each new one, until the client goes."""
    organization_id = here.organization_id
    closes_at = time.monotonic() + MAX_SOCKET_SECONDS * random.uniform(0.8, 1.0)
    with live.hub.subscription(organization_id) as wakeups, _present(here):
        latest = live.latest_seq(organization_id)
        if since is None or since > latest:
            # No position, or one from before the event log was lost: start afresh.
            seq = _reset(ws, latest) if since is not None else latest
        else:
            seq = since
        last_sent = time.monotonic()
        while time.monotonic() < closes_at:
            sent = _send_since(ws, organization_id, seq)
            now = time.monotonic()
            if sent != seq:
                seq, last_sent = sent, now
            elif now - last_sent >= HEARTBEAT_SECONDS:
                ws.send(HEARTBEAT)
                last_sent = now
            _wait(ws, wakeups, here, until=last_sent + HEARTBEAT_SECONDS)


@contextmanager
def _present(here: presence.Page) -> Iterator[None]:
    """The page's presence is removed when its socket ends, however it ends."""
    try:
        yield
    finally:
        here.leave()


def _send_since(ws: Server, organization_id: int, seq: int) -> int:
    """Send the logged events after ``seq``; return the last number sent."""
    events, complete = live.events_since(organization_id, seq)
    if not complete or len(events) > MAX_BACKLOG:
        return _reset(ws, live.latest_seq(organization_id))
    for event in events:
        ws.send(json.dumps(event))
    return events[-1]["seq"] if events else seq


def _reset(ws: Server, latest: int) -> int:
    ws.send(json.dumps({"type": "reset", "seq": latest}))
    return latest


def _wait(ws: Server, wakeups: queue.Queue, here: presence.Page, until: float) -> None:
    """Wait for the organization's next logged event, or until ``until`` (a monotonic time).

    Meanwhile, about every second, act on what the page said about its presence,
    and pass on the presence events of others as they come.

    Raises:
      ConnectionClosed: once the client has gone (checked every second).
    """
    while (left := until - time.monotonic()) > 0:
        while (said := ws.receive(timeout=0)) is not None:
            here.receive(said)
        here.tick()
        try:
            events = [wakeups.get(timeout=min(left, 1.0))]
        except queue.Empty:
            continue
        while not wakeups.empty():
            events.append(wakeups.get_nowait())
        for event in events:
            if "seq" not in event:
                here.relay(event)
        if any("seq" in event for event in events):
            return


def init_app(app: Flask) -> None:
    app.config.setdefault(
        "SOCK_SERVER_OPTIONS",
        {"ping_interval": PING_SECONDS, "max_message_size": MAX_MESSAGE_BYTES},
    )
    app.register_blueprint(bp)
