"""The hot paths on an empty database and on a year of data, measured in one run (issue 11).

    python bench/scale.py [--messages 2000000] [--conversations 100000] [--inbound 20000]

In a scratch PostgreSQL database, it measures everything twice: first with
nearly nothing stored (one organization, the messages the inbound run itself
stores), then after ``bench/seed.py`` wrote a year of data (several
organizations, ``--conversations`` conversations, ``--messages`` messages) and
the tables were analyzed. Each time:

- inbound messages persisted per second: ``--inbound`` WhatsApp webhooks, one per
  job, drained by `dramatiq workers` with the Procfile's settings (10% → 90%);
- the reads staff make, through the real API (Flask's test client with a bearer
  token, in this process): the conversation list's first page and a page 20,000
  conversations deep by cursor, a thread's latest 50 messages and the 50 before
  them, and ``events?since=`` (Redis, no SQL: the log is capped at 10,000 events);
- search (``/api/v1/search``, a page of 20) for each of ``SEARCHES``: a rare word, a
  common one, the start of most seeded messages' words, a contact's name, a phone's
  start (target: p95 under 100 ms on the seeded database);
- a status update by external id, through ``app.messages.apply_status``, the
  function the inbound worker calls for each status webhook: READ for replies
  sent just before (as most receipts are), and on the seeded database also for
  replies of any age picked at random (a late receipt, on a row not in cache).

Reads are timed on the largest organization: on the empty database, the one the
inbound run filled; on the seeded one, the largest seeded organization.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS,
    drain_rate,
    dramatiq_workers,
    print_table,
    scratch_database,
    scratch_redis,
    snorq,
    snorq_env,
)
from bench.inbound import ACCOUNT, webhook_body
from bench.seed import Sizes, seed

#: Requests timed per read.
SAMPLES = 200
#: How deep the deep page of the conversation list is.
DEEP = 20_000
READS = ("list_first_page", "list_deep_page", "thread_latest_50", "thread_older_50", "events_since")
#: What staff search for: a word of a few dozen messages (a product of bench/seed.py's
#: long tail), one in most of the inbound run's messages and in a fifth of the seeded
#: ones, the start of words in most seeded messages, a contact's name, a phone's start.
SEARCHES = {
    "search_rare_word": "tenepo",
    "search_common_word": "order",
    "search_most_messages": "t",
    "search_contact_name": "Zoë",
    "search_phone_prefix": "1555000123",
}
#: Targets: p95 on the seeded database, and seeded over empty.
P95_TARGET_MS, RATIO_TARGET = 50.0, 1.2
#: Search reads far more rows than a page of the list, so its target is its own.
SEARCH_P95_TARGET_MS = 100.0


def inbound_rate(env: dict, total: int, first_number: int, logs: Path) -> float:
    """Messages/s the workers store from ``total`` queued webhooks (one per job)."""
    import psycopg2
    import redis as redis_client
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.message import Message

    connection = psycopg2.connect(env["DATABASE_URL"])
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute("SELECT COALESCE(MAX(id), 0) FROM message")
    before = cursor.fetchone()[0]

    def stored() -> int:
        # A range of the primary key: cheap however large the table is.
        cursor.execute("SELECT count(*) FROM message WHERE id > %s", (before,))
        return cursor.fetchone()[0]

    broker = RedisBroker(client=redis_client.Redis.from_url(env["REDIS_URL"]))
    for number in range(first_number, first_number + total):
        delivery = [uuid.uuid4().hex, "whatsapp", webhook_body(number), time.time()]
        broker.enqueue(Message("inbound", "ingest_webhooks", ([delivery],), {}, {}))
    workers = dramatiq_workers("workers", env, logs, "inbound")
    try:
        rate = drain_rate(total, stored, workers)
        deadline = time.monotonic() + 120
        while stored() < total and time.monotonic() < deadline:
            time.sleep(0.2)
        # As autovacuum would after so many inserts, before the reads are timed.
        cursor.execute("ANALYZE")
        return rate
    finally:
        workers.stop()
        connection.close()


class Reads:
    """The timed reads for one organization, through the API and the status function."""

    def __init__(self, organization_id: int) -> None:
        from app import create_app
        from app.auth import create_api_token, hash_password
        from app.models import User

        self.organization_id = organization_id
        self.client = create_app().test_client()
        user = User.create(
            organization=organization_id,
            email=f"bench-{uuid.uuid4().hex[:8]}@scale.test",
            password_hash=hash_password("bench"),
        )
        self.headers = {"Authorization": f"Bearer {create_api_token(user)}"}

    def get(self, url: str) -> dict:
        response = self.client.get(url, headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.get_data(as_text=True)}")
        return response.get_json()

    def measure(self) -> dict:
        deep, threads, events = self._deep_cursor(), self._threads(), self._fill_event_log()
        urls = {
            "list_first_page": ["/api/v1/conversations?limit=50"] * SAMPLES,
            "list_deep_page": [f"/api/v1/conversations?limit=50&cursor={deep}"] * SAMPLES,
            "thread_latest_50": [
                f"/api/v1/conversations/{c}/messages?limit=50" for c, _ in threads
            ],
            "thread_older_50": [
                f"/api/v1/conversations/{c}/messages?limit=50&before={b}" for c, b in threads
            ],
            "events_since": [f"/api/v1/events?since={events - 20}"] * SAMPLES,
        }
        for name, query in SEARCHES.items():
            urls[name] = [f"/api/v1/search?q={quote(query)}&limit=20"] * SAMPLES
        figures = {name: timed(self.get, urls[name]) for name in (*READS, *SEARCHES)}
        # Receipts mostly follow a send within minutes; a late one finds a cold row.
        older = self._older_replies()
        figures["status_update"] = timed(self._read, self._new_replies())
        if len(older) > SAMPLES:
            figures["status_update_any_age"] = timed(self._read, older)
        return figures

    def _deep_cursor(self) -> str:
        """The cursor of the page ``DEEP`` conversations in (or as deep as there are)."""
        from app.models import Conversation

        total = Conversation.select().where(Conversation.organization == self.organization_id)
        depth, walked, cursor = min(DEEP, total.count() - 50), 0, ""
        while walked < depth:
            step = min(200, depth - walked)
            after = f"&cursor={cursor}" if cursor else ""
            cursor = self.get(f"/api/v1/conversations?limit={step}{after}")["next_cursor"]
            walked += step
        return cursor

    def _threads(self) -> list[tuple[int, int]]:
        """Conversations of over 50 messages; each with the id its 50 latest start at."""
        from app.db import database

        rows = database.execute_sql(
            "SELECT conversation_id FROM message WHERE organization_id = %s "
            "GROUP BY conversation_id HAVING count(*) > 50",
            (self.organization_id,),
        ).fetchall()
        if not rows:
            raise RuntimeError("no conversation has over 50 messages: queue more --inbound")
        chosen = random.Random(7).choices([row[0] for row in rows], k=SAMPLES)
        threads = []
        for conversation_id in chosen:
            start = database.execute_sql(
                "SELECT id FROM message WHERE conversation_id = %s "
                "ORDER BY id DESC OFFSET 49 LIMIT 1",
                (conversation_id,),
            ).fetchone()[0]
            threads.append((conversation_id, start))
        return threads

    def _fill_event_log(self) -> int:
        """Fill the organization's live log to its cap; the latest sequence number."""
        from app import live

        for number in range(live.RETAINED_EVENTS):
            live.publish(self.organization_id, "bench:event", {"number": number})
        return live.latest_seq(self.organization_id)

    def _older_replies(self) -> list[tuple[int, str]]:
        """Up to SAMPLES + 1 replies not read yet, of any age, picked at random."""
        from peewee import fn

        from app.models import Direction, Message

        return list(
            Message.select(Message.connection, Message.external_id)
            .where(
                Message.organization == self.organization_id,
                Message.direction == Direction.OUTBOUND,
                Message.status.in_(["SENT", "DELIVERED"]),
            )
            .order_by(fn.RANDOM())
            .limit(SAMPLES + 1)
            .tuples()
        )

    def _new_replies(self) -> list[tuple[int, str]]:
        """SAMPLES + 1 replies recorded SENT just now, across the organization's conversations."""
        from app.messages import create_outbound, record_sent
        from app.models import Conversation

        conversations = list(
            Conversation.select()
            .where(Conversation.organization == self.organization_id)
            .order_by(Conversation.id.desc())
            .limit(SAMPLES + 1)
        )
        replies = []
        for number in range(SAMPLES + 1):
            conversation = conversations[number % len(conversations)]
            reply, _ = create_outbound(conversation, user_id=None, content="On its way 🚚")
            external_id = f"wamid.scale-{uuid.uuid4().hex}"
            record_sent(reply, external_id)
            replies.append((conversation.connection_id, external_id))
        return replies

    def _read(self, reply: tuple[int, str]) -> None:
        """What the inbound worker does with a READ status webhook for ``reply``."""
        from app.db import utcnow
        from app.messages import apply_status
        from app.platforms.events import StatusEvent
        from app.routing import Route

        connection_id, external_id = reply
        route = Route(connection_id, self.organization_id, "whatsapp")
        if not apply_status(route, StatusEvent(ACCOUNT, external_id, "READ", utcnow())):
            raise RuntimeError(f"status of {external_id} not applied")


def timed(call, arguments: list) -> dict:
    """p50 and p95 in ms of ``call(argument)``; the first argument only warms up."""
    call(arguments[0])
    times = []
    for argument in arguments[1:]:
        started = time.perf_counter()
        call(argument)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50_ms": times[len(times) // 2],
        "p95_ms": times[int(len(times) * 0.95) - 1],
        "samples": len(times),
    }


def phase(env: dict, organization_id: int, inbound: int, first_number: int, logs: Path) -> dict:
    """Inbound, then the reads of ``organization_id`` (given replies to update if it has none)."""
    from app.db import database

    figures = {"inbound_per_s": inbound_rate(env, inbound, first_number, logs)}
    # Not in a connection context: each API request closes the thread's connection.
    figures.update(Reads(organization_id).measure())
    database.close()
    return figures


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=Sizes.messages)
    parser.add_argument("--conversations", type=int, default=Sizes.conversations)
    parser.add_argument("--organizations", type=int, default=Sizes.organizations)
    parser.add_argument("--inbound", type=int, default=20_000)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    sizes = Sizes(
        organizations=args.organizations, conversations=args.conversations, messages=args.messages
    )
    with scratch_database("snorq_scale") as database_url, scratch_redis() as redis_url:
        env = snorq_env(database_url, redis_url)
        os.environ.update(env)
        snorq(env, "migrate")
        org = int(snorq(env, "create-org", "Bench"))
        snorq(env, "add-connection", "--org", str(org), "--platform", "whatsapp",
              "--account-id", ACCOUNT, "--access-token", "bench-token")  # fmt: skip
        from app.config import get_settings
        from app.db import database, init_database

        init_database(get_settings())
        figures = {"sizes": sizes.__dict__, "empty": phase(env, org, args.inbound, 0, logs)}
        import psycopg2

        connection = psycopg2.connect(database_url)
        try:
            figures["seed"] = seed(connection, sizes)
        finally:
            connection.close()
        database.close_all()
        largest = figures["seed"]["organizations"][0]
        figures["seeded"] = phase(env, largest, args.inbound, 10_000_000, logs)
        database.close_all()
    (RESULTS / "scale.json").write_text(json.dumps(figures, indent=2))
    print_table(
        f"Hot paths, empty database vs {sizes.messages:,} messages "
        f"(seeded in {figures['seed']['seconds']:.0f} s)",
        table(figures),
    )
    return figures


def table(figures: dict) -> list[tuple]:
    empty, seeded = figures["empty"], figures["seeded"]
    rows = [("figure", "empty", "seeded", "seeded / empty", "target")]
    rows.append((
        "inbound persisted", f"{empty['inbound_per_s']:.0f}/s", f"{seeded['inbound_per_s']:.0f}/s",
        f"{empty['inbound_per_s'] / seeded['inbound_per_s']:.2f} (time)", f"≤ {RATIO_TARGET}",
    ))  # fmt: skip
    for name in (*READS, "status_update", *SEARCHES):
        before, after = empty[name], seeded[name]
        target = (
            f"p95 < {SEARCH_P95_TARGET_MS:.0f} ms"
            if name in SEARCHES
            else (f"p95 < {P95_TARGET_MS:.0f} ms, ≤ {RATIO_TARGET}")
        )
        rows.append((
            f"{name} p50 / p95",
            f"{before['p50_ms']:.1f} / {before['p95_ms']:.1f} ms",
            f"{after['p50_ms']:.1f} / {after['p95_ms']:.1f} ms",
            f"{after['p95_ms'] / before['p95_ms']:.2f}",
            target,
        ))  # fmt: skip
    if "status_update_any_age" in seeded:
        old = seeded["status_update_any_age"]
        rows.append(("  …of a reply of any age", "-",
                     f"{old['p50_ms']:.1f} / {old['p95_ms']:.1f} ms", "-", "-"))  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
