"""Inbound messages persisted per second by the worker on PostgreSQL, next to a no-op actor.

    python bench/inbound.py [--messages 20000]

Queues N signed-webhook jobs (one WhatsApp message each, from a few hundred
customers), then starts `dramatiq workers` with the Procfile's settings and
times the steady part of the drain (10% → 90% stored). The ceiling is a no-op
actor drained by the same worker settings from the same Redis. A second run
queues the same number of messages in jobs of 8 deliveries, as the web's group
commit produces them under load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS,
    drain_rate,
    dramatiq_workers,
    noop_rate,
    print_table,
    scratch_database,
    scratch_redis,
    snorq,
    snorq_env,
)

ACCOUNT = "106540352242922"
CUSTOMERS = 300


def webhook_body(number: int) -> str:
    customer = f"1650555{number % CUSTOMERS:04d}"
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": ACCOUNT,
                            },
                            "contacts": [
                                {
                                    "profile": {"name": f"Customer {number % CUSTOMERS}"},
                                    "wa_id": customer,
                                }
                            ],
                            "messages": [
                                {
                                    "from": customer,
                                    "id": f"wamid.bench{number:08d}",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": f"Message {number}: where is my order? 📦"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload).replace("/", "\\/")


def persist_rate(env: dict, total: int, group: int, logs: Path) -> float:
    """Queue ``total`` messages in jobs of ``group`` deliveries; time the workers storing them."""
    import psycopg2
    import redis as redis_client
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.message import Message

    broker = RedisBroker(client=redis_client.Redis.from_url(env["REDIS_URL"]))
    deliveries = [
        [uuid.uuid4().hex, "whatsapp", webhook_body(n), time.time()] for n in range(total)
    ]
    for start in range(0, total, group):
        broker.enqueue(
            Message(
                queue_name="inbound",
                actor_name="ingest_webhooks",
                args=(deliveries[start : start + group],),
                kwargs={},
                options={},
            )
        )
    connection = psycopg2.connect(env["DATABASE_URL"])
    connection.autocommit = True
    cursor = connection.cursor()

    def stored() -> int:
        cursor.execute("SELECT count(*) FROM message")
        return cursor.fetchone()[0]

    workers = dramatiq_workers("workers", env, logs, "inbound")
    try:
        rate = drain_rate(total, stored, workers)
        deadline = time.monotonic() + 120
        while stored() < total and time.monotonic() < deadline:
            time.sleep(0.1)
        if stored() != total:
            raise RuntimeError(f"stored {stored()} of {total} messages")
        return rate
    finally:
        workers.stop()
        connection.close()


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    figures = {}
    with scratch_redis() as redis_url:
        figures["noop"] = noop_rate(redis_url, args.messages, logs)
        for group in (1, 8):
            with scratch_database() as database_url:
                env = snorq_env(database_url, redis_url)
                snorq(env, "migrate")
                org = snorq(env, "create-org", "Bench")
                snorq(
                    env,
                    "add-connection",
                    "--org",
                    org,
                    "--platform",
                    "whatsapp",
                    "--account-id",
                    ACCOUNT,
                    "--access-token",
                    "bench-token",
                )
                figures[f"persist_group_{group}"] = persist_rate(env, args.messages, group, logs)
    (RESULTS / "inbound.json").write_text(json.dumps(figures, indent=2))
    noop = figures["noop"]
    print_table(
        f"Inbound persistence on PostgreSQL ({args.messages} messages, workers as in the Procfile)",
        [
            ("run", "messages/s", "ratio to no-op"),
            ("no-op actor (ceiling)", f"{noop:.0f}", "1.00"),
            (
                "SNORQ, one delivery per job",
                f"{figures['persist_group_1']:.0f}",
                f"{figures['persist_group_1'] / noop:.2f}",
            ),
            (
                "SNORQ, 8 deliveries per job",
                f"{figures['persist_group_8']:.0f}",
                f"{figures['persist_group_8'] / noop:.2f}",
            ),
        ],
    )
    return figures


if __name__ == "__main__":
    main()
