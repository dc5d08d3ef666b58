"""Signed-webhook acknowledgements per second through gunicorn, next to two ceilings.

    python bench/webhooks.py [--seconds 10] [--connections 64]

(a) a bare Flask endpoint that returns 200, (b) a hand-written endpoint that
verifies the HMAC and sends one Dramatiq message, and SNORQ's own endpoint, all
on the Procfile's gunicorn settings, against the same Redis. Then SNORQ's p50/p99
latency at 1,000 requests/s offered. Needs wrk (`apt-get install wrk`), and the
machine's PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    APP_SECRETS,
    RESULTS,
    ROOT,
    free_port,
    gunicorn,
    print_table,
    require,
    scratch_database,
    scratch_redis,
    snorq,
    snorq_env,
    wrk,
)

PATH = "/api/v1/webhooks/whatsapp"


def whatsapp_body() -> bytes:
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
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": "Zoë"}, "wa_id": "16505551234"}],
                            "messages": [
                                {
                                    "from": "16505551234",
                                    "id": "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQz",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": "Hello, is my order on its way? 📦"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload).replace("/", "\\/").encode()


def signature(body: bytes) -> dict:
    secret = APP_SECRETS["WHATSAPP_APP_SECRET"].encode()
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()}


def measure(app: str, env: dict, body: bytes, args, logs: Path, rate: int | None = None) -> dict:
    """One load run against a fresh gunicorn serving ``app``."""
    counts = Path(tempfile.mkdtemp(prefix="bench-counts-"))
    env = {**env, "BENCH_COUNTS_DIR": str(counts)}
    port = free_port()
    server = gunicorn(app, port, env, logs, config=ROOT / "bench" / "gunicorn_counting.py")
    try:
        url = f"http://127.0.0.1:{port}{PATH}"
        wrk(url, body, signature(body), seconds=2, connections=args.connections)
        result = wrk(
            url,
            body,
            signature(body),
            seconds=args.seconds,
            connections=args.connections if rate is None else 20,
            rate=rate,
        )
    finally:
        server.stop()
    served = [json.loads(p.read_text())["requests"] for p in counts.glob("*.json")]
    result["busiest_worker_share"] = max(served) / max(1, sum(served)) if served else None
    return result


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    require("wrk", "apt-get install wrk")
    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    body = whatsapp_body()
    with scratch_database() as database_url, scratch_redis() as redis_url:
        env = snorq_env(database_url, redis_url)
        snorq(env, "migrate")
        bare = measure("bench.ceilings:bare_app", env, body, args, logs)
        naive = measure("bench.ceilings:naive_app", env, body, args, logs)
        ours = measure("app:create_app()", env, body, args, logs)
        steady = measure("app:create_app()", env, body, args, logs, rate=1000)
    figures = {"bare": bare, "naive": naive, "snorq": ours, "snorq_at_1000_rps": steady}
    (RESULTS / "webhooks.json").write_text(json.dumps(figures, indent=2))
    rows = [
        ("endpoint", "requests/s", "ratio to bare", "p50 ms", "p99 ms", "errors", "busiest worker")
    ]
    for name, run in (
        ("(a) bare Flask", bare),
        ("(b) HMAC + one send", naive),
        ("SNORQ", ours),
        ("SNORQ at 1,000/s offered", steady),
    ):
        ratio = "-" if run is steady else f"{run['rps'] / bare['rps']:.2f}"
        rows.append(
            (
                name,
                f"{run['rps']:.0f}",
                ratio,
                f"{run['p50_ms']:.1f}",
                f"{run['p99_ms']:.1f}",
                run["errors"],
                f"{run['busiest_worker_share']:.0%}",
            )
        )
    print_table(
        "Signed webhook acknowledgements (gunicorn gthread, "
        f"{args.connections} connections, {args.seconds} s)",
        rows,
    )
    return figures


if __name__ == "__main__":
    main()
