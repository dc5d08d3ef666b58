"""Who else is here: the staff members viewing or typing in a conversation right now.

Presence is stale within seconds, so it is not a numbered live event and is not
kept in the event log. Each open page's socket keeps a record in Redis (one hash
per conversation, a field per page) that lives :data:`TTL_SECONDS` unless the
socket refreshes it, and announces each change on the organization's live
channel (:func:`app.live.announce`), so every web process hears it. A page that
opens a conversation is told who is already there; a page that closes takes its
record with it, and the record of a page whose web process died simply expires.

Never a message text: only who, which conversation, viewing or typing, and since when.
"""

from __future__ import annotations

import datetime
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from app import live
from app.redis_client import get_redis
from app.serializers import timestamp

VIEWING, TYPING = "viewing", "typing"
#: A record not refreshed for this long belongs to a page that is gone.
TTL_SECONDS = 45
#: How often an open page's socket refreshes its record and announces it again.
REFRESH_SECONDS = 15
#: How long one "typing" from a page counts (the page repeats it every few seconds).
TYPING_SECONDS = 6
#: The live event each change is announced as.
EVENT = "presence"


@dataclass(frozen=True)
class Record:
    """One page's presence in one conversation (times are Unix seconds)."""

    user_id: int
    email: str
    viewing_since: float
    expires: float
    typing_since: float | None = None
    typing_until: float | None = None

    def typing(self, now: float) -> bool:
        return self.typing_until is not None and self.typing_until > now


def _key(organization_id: int, conversation_id: int) -> str:
    return f"snorq:presence:{organization_id}:{conversation_id}"


def save(organization_id: int, conversation_id: int, page_id: str, record: Record) -> None:
    """Keep (or refresh) one page's record; the conversation's hash lives as long as its newest."""
    key = _key(organization_id, conversation_id)
    writes = get_redis().pipeline(transaction=True)
    writes.hset(key, page_id, json.dumps(asdict(record)))
    writes.expire(key, TTL_SECONDS)
    writes.execute()


def remove(organization_id: int, conversation_id: int, page_id: str) -> None:
    get_redis().hdel(_key(organization_id, conversation_id), page_id)


def records(organization_id: int, conversation_id: int, now: float) -> list[Record]:
    """The conversation's live records; expired ones (their page is gone) are dropped."""
    key = _key(organization_id, conversation_id)
    stored = {field: Record(**json.loads(raw)) for field, raw in get_redis().hgetall(key).items()}
    expired = [field for field, record in stored.items() if record.expires <= now]
    if expired:
        get_redis().hdel(key, *expired)
    return [record for record in stored.values() if record.expires > now]


def entries(found: list[Record], now: float) -> list[dict]:
    """One entry per staff member, earliest first: typing on any page wins over viewing.

    Returns:
      ``[{"user": {"id", "email"}, "state": "viewing"|"typing", "since": ISO}]``.
    """
    by_user: dict[int, list[Record]] = {}
    for record in found:
        by_user.setdefault(record.user_id, []).append(record)
    listed = [_entry(pages, now) for pages in by_user.values()]
    return sorted(listed, key=lambda entry: (entry["since"], entry["user"]["id"]))


def _entry(pages: list[Record], now: float) -> dict:
    typing = [page.typing_since for page in pages if page.typing(now)]
    since = min(typing) if typing else min(page.viewing_since for page in pages)
    return {
        "user": {"id": pages[0].user_id, "email": pages[0].email},
        "state": TYPING if typing else VIEWING,
        "since": _iso(since),
    }


def present(organization_id: int, conversation_id: int, *, excluding: int) -> list[dict]:
    """Who else is in the conversation now (every staff member but ``excluding``)."""
    now = time.time()
    found = records(organization_id, conversation_id, now)
    return entries([record for record in found if record.user_id != excluding], now)


def _iso(seconds: float) -> str:
    return timestamp(datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None))


class Page:
    """One open page's presence, kept by its socket: which conversation, and typing or not.

    The page says what it shows (:meth:`receive`); the socket calls :meth:`tick`
    often (about every second) to act on it, to end a typing that stopped and to
    refresh the record, :meth:`relay` with each presence event of the organization,
    and :meth:`leave` when it closes.

    Parameters:
      send: Sends one event (a dict) to this page.
    """

    def __init__(
        self, organization_id: int, user_id: int, email: str, send: Callable[[dict], None]
    ) -> None:
        self.organization_id = organization_id
        self.user_id = user_id
        self.email = email
        self.send = send
        self.page_id = secrets.token_hex(8)
        self.conversation_id: int | None = None
        self.record: Record | None = None
        self._wanted: tuple[int | None, str] | None = None
        self._refresh_at = 0.0

    def receive(self, raw: str | bytes) -> None:
        """What the page said: ``{"type": "presence", "conversation_id": N|null, "state"}``.

        Only the last thing said counts, acted on at the next :meth:`tick`; anything
        malformed is ignored. No database query: the record is kept under the page's
        own organization, so another organization's staff never hear of it.
        """
        try:
            said = json.loads(raw)
        except ValueError:
            return
        if not isinstance(said, dict) or said.get("type") != EVENT:
            return
        conversation_id, state = said.get("conversation_id"), said.get("state", VIEWING)
        known = conversation_id is None or (type(conversation_id) is int and conversation_id > 0)
        if known and state in (VIEWING, TYPING):
            self._wanted = (conversation_id, state)

    def tick(self) -> None:
        """Act on what the page said last; end a typing that stopped; refresh when due."""
        now = time.time()
        wanted, self._wanted = self._wanted, None
        if wanted is not None and wanted[0] != self.conversation_id:
            self._move(wanted[0], now)
        if self.record is None:
            return
        if wanted is not None and wanted[1] == TYPING:
            self._keep(self._typing(now), now)
        elif self.record.typing_until is not None and (wanted or not self.record.typing(now)):
            self._keep(replace(self.record, typing_since=None, typing_until=None), now)
        elif now >= self._refresh_at:
            self._keep(self.record, now)

    def relay(self, event: dict) -> None:
        """Pass on another staff member's change in the conversation this page shows."""
        if event.get("type") != EVENT:
            return
        data = event.get("data", {})
        here = (
            self.conversation_id is not None and data.get("conversation_id") == self.conversation_id
        )
        if here and data.get("user", {}).get("id") != self.user_id:
            self.send(event)

    def leave(self) -> None:
        """The page closed (or shows another conversation): its record goes."""
        if self.conversation_id is None:
            return
        conversation_id, self.conversation_id, self.record = self.conversation_id, None, None
        remove(self.organization_id, conversation_id, self.page_id)
        self._announce(conversation_id)

    def _move(self, conversation_id: int | None, now: float) -> None:
        """Leave the conversation shown so far; tell the page who is in the new one."""
        self.leave()
        if conversation_id is None:
            return
        self.conversation_id = conversation_id
        self.record = Record(self.user_id, self.email, viewing_since=now, expires=0)
        self._refresh_at = 0.0
        for entry in present(self.organization_id, conversation_id, excluding=self.user_id):
            self.send({"type": EVENT, "data": {"conversation_id": conversation_id, **entry}})

    def _typing(self, now: float) -> Record:
        since = self.record.typing_since if self.record.typing(now) else now
        return replace(self.record, typing_since=since, typing_until=now + TYPING_SECONDS)

    def _keep(self, record: Record, now: float) -> None:
        """Save the page's record (refreshing its lifetime) and announce the result."""
        self.record = replace(record, expires=now + TTL_SECONDS)
        save(self.organization_id, self.conversation_id, self.page_id, self.record)
        self._refresh_at = now + REFRESH_SECONDS
        self._announce(self.conversation_id)

    def _announce(self, conversation_id: int) -> None:
        """Tell the organization's pages where this staff member now stands in the conversation.

        Across all their pages: ``state`` null once none of them shows it.
        """
        now = time.time()
        found = records(self.organization_id, conversation_id, now)
        listed = entries([record for record in found if record.user_id == self.user_id], now)
        user = {"id": self.user_id, "email": self.email}
        entry = listed[0] if listed else {"user": user, "state": None, "since": None}
        live.announce(self.organization_id, EVENT, {"conversation_id": conversation_id, **entry})
