"""What a fault test counts: messages by external id, the queue's unacknowledged jobs.

Counts come from the database and Redis themselves, never from SNORQ's own
reports, so a test's figures say what is really stored and really queued.
"""

from __future__ import annotations

import collections
import datetime
import json
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg2
import redis
import requests

#: Dramatiq's key prefix in Redis.
NAMESPACE = "dramatiq"


def query(database_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """The rows of one statement, run in its own committed transaction."""
    connection = psycopg2.connect(database_url, connect_timeout=5)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def database_text(database_url: str) -> str:
    """Every row of every table, as text: what a copy of the database would give away."""
    tables = query(
        database_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    return "\n".join(
        repr(query(database_url, f'SELECT * FROM "{table}"'))  # noqa: S608 (names from the catalog)
        for (table,) in tables
    )


def stored_messages(database_url: str, direction: str = "INBOUND") -> collections.Counter:
    """How many rows each external id has among the messages of ``direction``."""
    rows = query(
        database_url,
        "SELECT external_id, count(*) FROM message WHERE direction = %s GROUP BY external_id",
        (direction,),
    )
    return collections.Counter(dict(rows))


def all_stored(database_url: str, external_ids: Iterable[str]) -> bool:
    stored = stored_messages(database_url)
    return all(stored[external_id] for external_id in external_ids)


def exactly_once(sent: Iterable[str], stored: collections.Counter) -> dict[str, int]:
    """Sent, stored, duplicated and lost messages, counted by external id."""
    sent = set(sent)
    return {
        "sent": len(sent),
        "stored": sum(1 for external_id in sent if stored[external_id]),
        "duplicated": sum(stored[external_id] - 1 for external_id in sent if stored[external_id]),
        "lost": sum(1 for external_id in sent if not stored[external_id]),
    }


def lost(sent: Iterable[str], stored: collections.Counter) -> list[str]:
    """The external ids among ``sent`` that no stored message has."""
    return [external_id for external_id in sent if not stored[external_id]]


def unacknowledged(client: redis.Redis) -> dict[str, dict[str, list[str]]]:
    """Per worker (its broker id), per queue: the jobs it fetched and has not acknowledged."""
    prefix = f"{NAMESPACE}:__acks__."
    held: dict[str, dict[str, list[str]]] = collections.defaultdict(dict)
    for key in client.scan_iter(match=f"{prefix}*"):
        broker_id, _, queue = key.decode().removeprefix(prefix).partition(".")
        members = sorted(member.decode() for member in client.smembers(key))
        if members:
            held[broker_id][queue] = members
    return dict(held)


def held_webhooks(client: redis.Redis) -> list[str]:
    """The message ids in the inbound jobs workers fetched and have not acknowledged."""
    return [
        external_id(delivery)
        for queues in unacknowledged(client).values()
        for queue, jobs in queues.items()
        for delivery in deliveries(client, queue, jobs)
    ]


def whereabouts(client: redis.Redis, external_ids: Iterable[str]) -> dict[str, list[str]]:
    """Where the inbound jobs carrying each of ``external_ids`` sit in Redis.

    A place is a queue (``inbound``, its delay queue ``inbound.DQ``, its dead
    letters ``inbound.XQ``) or a worker's ack set for one (``acks:inbound.DQ``); an
    id in no place has no job left at all.
    """
    wanted = set(external_ids)
    places: dict[str, list[str]] = {external_id: [] for external_id in wanted}

    def note(place: str, queue: str, jobs: Iterable[str]) -> None:
        for delivery in deliveries(client, queue, jobs):
            carried = external_id(delivery)
            if carried in wanted:
                places[carried].append(place)

    for queue in ("inbound", "inbound.DQ", "inbound.XQ"):
        key = f"{NAMESPACE}:{queue}"
        jobs = client.zrange(key, 0, -1) if queue.endswith("XQ") else client.lrange(key, 0, -1)
        note(queue, queue, (job.decode() for job in jobs))
    for queues in unacknowledged(client).values():
        for queue, jobs in queues.items():
            note(f"acks:{queue}", queue, jobs)
    return places


def external_id(delivery: list) -> str:
    """The message id in one delivery's body (each generated webhook carries one)."""
    from app.platforms import get_platform

    _, platform, body, *_ = delivery
    [event] = get_platform(platform).parse(body.encode("utf-8", "surrogateescape"))
    return event.external_id


def deliveries(client: redis.Redis, queue: str, job_ids: Iterable[str]) -> list[list]:
    """The deliveries ``[id, platform, body, received_at, request_id]`` the inbound jobs carry."""
    job_ids = list(job_ids)
    if not job_ids:
        return []
    found = []
    for data in client.hmget(f"{NAMESPACE}:{queue}.msgs", job_ids):
        job = json.loads(data) if data is not None else {}
        if job.get("actor_name") == "ingest_webhooks":
            found += job["args"][0]
    return found


# -- replies ---------------------------------------------------------------------------


def platform_requests(simulator_url: str, endpoint: str = "send") -> list[dict]:
    """Every request of one kind the simulated platforms received, in arrival order."""
    response = requests.get(
        f"{simulator_url}/_simulator/requests", params={"endpoint": endpoint}, timeout=10
    )
    response.raise_for_status()
    return response.json()["requests"]


def carrying(entries: list[dict], text: str) -> list[dict]:
    """The requests whose parameters hold ``text`` (a reply's unique ASCII text)."""
    return [entry for entry in entries if text in json.dumps(entry["params"])]


def accepted(entry: dict) -> bool:
    """Whether the platform took the message (TikTok refuses in an HTTP 200, by its code)."""
    if entry["status"] != 200:
        return False
    return entry["platform"] != "tiktok" or (entry.get("response") or {}).get("code") == 0


def answer(entry: dict) -> str:
    """How the platform answered: the HTTP status, and TikTok's code when it refused."""
    code = (entry.get("response") or {}).get("code")
    refused = entry["platform"] == "tiktok" and code not in (None, 0)
    return f"{entry['status']} (code {code})" if refused else str(entry["status"])


def times_accepted(entries: list[dict], text: str) -> int:
    """How often a platform took the reply whose unique text is ``text``."""
    return sum(accepted(entry) for entry in carrying(entries, text))


#: The code of a send that may have reached the platform (it is marked so before the call).
SEND_UNCONFIRMED = 2009
SENT = {"SENT", "DELIVERED", "READ"}


@dataclass(frozen=True)
class Reply:
    """A staff reply as the database has it, and the database's clock when it was read."""

    status: str
    error_code: int | None
    error_message: str | None
    send_attempts: int
    lease_until: datetime.datetime | None
    now: datetime.datetime

    @property
    def settled(self) -> bool:
        return self.status != "PENDING"

    @property
    def unconfirmed_and_due(self) -> bool:
        """Waiting for a webhook past its deadline: the clock's next sweep fails it."""
        return (
            self.status == "PENDING"
            and self.error_code == SEND_UNCONFIRMED
            and self.lease_until is not None
            and self.lease_until < self.now
        )

    def outcome(self) -> str:
        if self.status in SENT:
            return "sent"
        if self.status == "FAILED":
            return f"failed {self.error_code} ({(self.error_message or '').split('.')[0]})"
        return f"pending (code {self.error_code}, {self.send_attempts} attempt(s))"


def replies(database_url: str, message_ids: Iterable[int]) -> dict[int, Reply]:
    """Each reply by its message id."""
    rows = query(
        database_url,
        "SELECT id, status, error_code, error_message, send_attempts,"
        " send_lease_until, now() AT TIME ZONE 'UTC' FROM message WHERE id = ANY(%s)",
        (list(message_ids),),
    )
    return {row[0]: Reply(*row[1:]) for row in rows}


def all_settled(database_url: str, message_ids: Iterable[int]) -> bool:
    return all(reply.settled for reply in replies(database_url, message_ids).values())


def only_the_sweep_left(database_url: str, message_ids: Iterable[int]) -> bool:
    """Whether every reply is settled, or waits for the clock's sweep and nothing else."""
    return all(
        reply.settled or reply.unconfirmed_and_due
        for reply in replies(database_url, message_ids).values()
    )


#: The error codes a platform answers when calls exceed its throughput limit.
THROTTLING_CODES = {"whatsapp": 130429, "facebook": 613, "tiktok": 40100}


def throttled(entry: dict) -> bool:
    """Whether the platform refused this request as over its rate limit."""
    answer = entry.get("response") or {}
    code = (
        answer.get("code") if entry["platform"] == "tiktok" else answer.get("error", {}).get("code")
    )
    return code == THROTTLING_CODES[entry["platform"]]


def busiest_window(arrivals: list[float], window: float) -> int:
    """The most arrivals any span of ``window`` seconds holds (half-open, as limits count)."""
    arrivals = sorted(arrivals)
    busiest, first = 0, 0
    for last, at in enumerate(arrivals):
        while at - arrivals[first] >= window:
            first += 1
        busiest = max(busiest, last - first + 1)
    return busiest


def unlinked_echoes(database_url: str, reply_ids: Iterable[int]) -> int:
    """Outbound messages staff did not write: platform echoes SNORQ could not tie to a reply."""
    [(count,)] = query(
        database_url,
        "SELECT count(*) FROM message WHERE direction = 'OUTBOUND' AND NOT id = ANY(%s)",
        (list(reply_ids),),
    )
    return count
