"""Outbound sends per second against a local fake WhatsApp, next to a no-op actor; and
how precisely the rate limiter holds a connection to its limit.

    python bench/outbound.py [--sends 4000] [--limit 10]

Throughput: seeds N PENDING replies in 200 conversations of one WhatsApp connection
whose limits are lifted, queues their send jobs, starts `dramatiq workers` with the
Procfile's settings on the outbound queue, and times the steady part of the drain
(10% → 90% SENT). The fake platform (``bench/fake_whatsapp.py``) answers each send
at once with a WhatsApp send response (no added latency). The ceiling is a no-op
actor drained by the same worker settings from the same Redis.

Precision: a connection limited to L sends per second (``burst_limit`` = L, WhatsApp's
one-second window) is offered 3L replies every second for 5 s. The fake platform
notes when each send arrives. Reported: the most sends it saw in any one-second span
(must be ≤ L), and the utilisation: the send rate while the backlog lasted (10th to
90th percentile arrival) over L. The Procfile's workers poll an idle queue every
100 ms (``dramatiq_worker_timeout``; Dramatiq's default of a second is what delays a
waiting reply most).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS,
    Service,
    answers,
    drain_rate,
    dramatiq_workers,
    free_port,
    noop_rate,
    print_table,
    scratch_database,
    scratch_redis,
    snorq,
    snorq_env,
    wait_for,
)
from tests.reliability.evidence import busiest_window

ACCOUNTS = {"throughput": "106540352242922", "precision": "106540352242923"}
CONVERSATIONS = 200


# -- seeding --------------------------------------------------------------------------


def seed_replies(cursor, connection_id: int, organization_id: int, count: int) -> list[int]:
    """``count`` PENDING replies spread over CONVERSATIONS customers who wrote a minute ago."""
    conversation_ids = []
    for n in range(CONVERSATIONS):
        cursor.execute(
            "INSERT INTO contact (organization_id, platform, external_id, phone, created_at)"
            " VALUES (%s, 'whatsapp', %s, %s, now()) RETURNING id",
            (organization_id, f"1650555{connection_id}{n:04d}", f"1650555{connection_id}{n:04d}"),
        )
        contact_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO conversation (organization_id, connection_id, contact_id,"
            " last_message_preview, last_inbound_at, unread_count, created_at)"
            " VALUES (%s, %s, %s, '', now() at time zone 'utc' - interval '1 minute', 0, now())"
            " RETURNING id",
            (organization_id, connection_id, contact_id),
        )
        conversation_ids.append(cursor.fetchone()[0])
    ids = []
    for n in range(count):
        cursor.execute(
            "INSERT INTO message (organization_id, connection_id, conversation_id, direction,"
            " content_type, content, status, created_at, send_attempts)"
            " VALUES (%s, %s, %s, 'OUTBOUND', 'TEXT', %s, 'PENDING',"
            " now() at time zone 'utc', 0) RETURNING id",
            (
                organization_id,
                connection_id,
                conversation_ids[n % CONVERSATIONS],
                f"Reply {n}: your order ships today 📦",
            ),
        )
        ids.append(cursor.fetchone()[0])
    return ids


def queue_sends(redis_url: str, message_ids: list[int]) -> None:
    """Queue one send job per reply, as the web process does."""
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.message import Message

    broker = RedisBroker(client=redis.Redis.from_url(redis_url))
    for message_id in message_ids:
        broker.enqueue(
            Message(
                queue_name="outbound",
                actor_name="send_message",
                args=(message_id,),
                kwargs={},
                options={},
            )
        )


def arrived(fake_url: str) -> list[float]:
    """When the sends the fake platform saw since the last call arrived."""
    import requests

    return requests.get(f"{fake_url}/arrivals", timeout=10).json()


# -- runs -----------------------------------------------------------------------------


def send_rate(env: dict, cursor, ids: dict, count: int, logs: Path) -> float:
    """Sends/s while the workers drain ``count`` replies (10% → 90% SENT)."""
    connection_id = ids["throughput"]
    cursor.execute("UPDATE platform_connection SET burst_limit = 0 WHERE id = %s", (connection_id,))
    message_ids = seed_replies(cursor, connection_id, ids["organization"], count)
    queue_sends(env["REDIS_URL"], message_ids)

    def sent() -> int:
        cursor.execute(
            "SELECT count(*) FROM message WHERE connection_id = %s AND status = 'SENT'",
            (connection_id,),
        )
        return cursor.fetchone()[0]

    workers = dramatiq_workers("workers", env, logs, "outbound")
    try:
        rate = drain_rate(count, sent, workers)
        wait_for(lambda: sent() == count, timeout=300, what=f"all {count} replies SENT")
        return rate
    finally:
        workers.stop()


def precision(
    env: dict, cursor, ids: dict, name: str, limit: int, logs: Path, fake_url: str
) -> dict:
    """Offer three times ``limit`` replies a second for 5 s to connection ``name``,
    limited to ``limit`` a second; what the fake platform saw."""
    connection_id, seconds = ids[name], 5
    cursor.execute(
        "UPDATE platform_connection SET burst_limit = %s WHERE id = %s", (limit, connection_id)
    )
    offered = 3 * limit * seconds
    message_ids = seed_replies(cursor, connection_id, ids["organization"], offered)
    arrivals: list[float] = []
    arrived(fake_url)  # forget the throughput run's
    workers = dramatiq_workers("workers", env, logs, "outbound")
    try:
        time.sleep(3)  # let the workers start before the first replies land
        for second in range(seconds):
            batch = message_ids[second * 3 * limit : (second + 1) * 3 * limit]
            queue_sends(env["REDIS_URL"], batch)
            time.sleep(1)
        wait_for(
            lambda: arrivals.extend(arrived(fake_url)) or len(arrivals) >= offered,
            timeout=300,
            what=f"{offered} sends arriving",
        )
    finally:
        workers.stop()
    times = sorted(arrivals)
    first, last = int(len(times) * 0.1), int(len(times) * 0.9)
    return {
        "limit": limit,
        "offered": offered,
        "sent": len(times),
        "most_in_any_second": busiest_window(times, 1.0),
        "utilisation": (last - first) / (times[last] - times[first]) / limit,
    }


def setup(env: dict, cursor) -> dict:
    snorq(env, "migrate")
    organization = int(snorq(env, "create-org", "Bench"))
    ids = {"organization": organization}
    for name, account in ACCOUNTS.items():
        ids[name] = int(
            snorq(
                env,
                "add-connection",
                "--org",
                str(organization),
                "--platform",
                "whatsapp",
                "--account-id",
                account,
                "--access-token",
                f"bench-token-{name}",
            )
        )
    return ids


def main() -> dict:
    import psycopg2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=4000)
    parser.add_argument("--limit", type=int, default=10, help="sends per second, precision run")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    with scratch_redis() as redis_url:
        noop = noop_rate(redis_url, args.sends, logs)
        with scratch_database() as database_url:
            port = free_port()
            env = snorq_env(
                database_url,
                redis_url,
                GRAPH_API_URL=f"http://127.0.0.1:{port}/v25.0",
                SNORQ_DAILY_QUOTA_WHATSAPP="0",
            )
            database = psycopg2.connect(database_url)
            database.autocommit = True
            cursor = database.cursor()
            fake_url = f"http://127.0.0.1:{port}"
            command = f"{sys.executable} -m bench.fake_whatsapp {port}"
            fake = Service("fake-whatsapp", command, env, logs)
            try:
                wait_for(lambda: answers(f"{fake_url}/healthz"), timeout=30, what="fake WhatsApp")
                ids = setup(env, cursor)
                sends = send_rate(env, cursor, ids, args.sends, logs)
                held = precision(env, cursor, ids, "precision", args.limit, logs, fake_url)
            finally:
                fake.stop()
                database.close()
    figures = {"noop": noop, "sends": sends, "precision": held}
    (RESULTS / "outbound.json").write_text(json.dumps(figures, indent=2))
    report(args.sends, figures)
    return figures


def report(count: int, figures: dict) -> None:
    noop, sends = figures["noop"], figures["sends"]
    print_table(
        f"Outbound sends on PostgreSQL ({count} replies, workers as in the Procfile, "
        "fake WhatsApp with no added latency)",
        [
            ("run", "per second", "ratio to no-op"),
            ("no-op actor (ceiling)", f"{noop:.0f}", "1.00"),
            ("SNORQ send_message", f"{sends:.0f}", f"{sends / noop:.2f}"),
        ],
    )
    run = figures["precision"]
    limit = run["limit"]
    print_table(
        f"Rate-limit precision: {3 * limit} replies offered a second for 5 s, "
        f"limit {limit} a second",
        [
            ("sent", "most in any 1 s (≤ limit)", "utilisation (target 90%)"),
            (
                f"{run['sent']}/{run['offered']}",
                str(run["most_in_any_second"]),
                f"{run['utilisation']:.0%}",
            ),
        ],
    )


if __name__ == "__main__":
    main()
