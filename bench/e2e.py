"""End-to-end latency, webhook POST to websocket event, and the processes' peak memory.

    python bench/e2e.py [--rate 50] [--seconds 20]

Runs twice: the Procfile's web and worker on scratch PostgreSQL and Redis, then the
embedded default (``snorq run``: one process on SQLite and an in-process queue, in a
scratch instance folder). Each time it signs a staff
member in through the login form and opens the inbox's websocket (/ws) as the page
does. Then it posts signed WhatsApp webhooks at a steady rate, each a new message,
and times each from just before its POST to the moment its ``new:message`` event
arrives on the socket. Meanwhile it samples the resident memory of every process of
the web and the worker (each is a process group: gunicorn's or Dramatiq's master
and their workers) and keeps the peak.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests
from simple_websocket import Client, ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, print_table
from tests.processes import Service, Stack, stack, stack_env

ACCOUNT = "106540352242922"
STAFF, PASSWORD = "bench@acme.test", "bench-password-1"


def webhook(number: int, secret: str) -> tuple[bytes, dict, str]:
    """A signed WhatsApp webhook carrying message ``number``; its body, headers, wamid."""
    wamid = f"wamid.e2e{number:08d}"
    customer = f"1650555{number % 50:04d}"
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": ACCOUNT},
            "contacts": [{"profile": {"name": f"Customer {number % 50}"}, "wa_id": customer}],
            "messages": [{"from": customer, "id": wamid, "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": f"Order {number}, please 📦"}}],
        }}]}],
    }  # fmt: skip
    body = json.dumps(payload).replace("/", "\\/").encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}, wamid


def signed_in(base_url: str) -> requests.Session:
    """A session signed in through the login form, as a staff member's browser is."""
    browser = requests.Session()
    page = browser.get(f"{base_url}/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"email": STAFF, "password": PASSWORD, "csrf_token": csrf}
    browser.post(f"{base_url}/login", data=form, timeout=10).raise_for_status()
    return browser


def listen(base_url: str, browser: requests.Session, arrived: dict, stop: threading.Event):
    """Record when each message's ``new:message`` event reaches the socket."""
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    # This client's Host header names the host without the port; the Origin must match.
    origin = base_url.rsplit(":", 1)[0]
    socket = Client.connect(
        base_url.replace("http", "ws") + "/ws?since=0",
        headers={"Cookie": cookies, "Origin": origin},
    )
    try:
        while not stop.is_set():
            frame = socket.receive(timeout=0.5)
            if frame is None:
                continue
            event = json.loads(frame)
            if event.get("type") == "new:message":
                arrived[event["data"]["message"]["external_id"]] = time.perf_counter()
    except ConnectionClosed:
        pass
    finally:
        socket.close()


def peak_memory(
    services: dict[str, Service], peaks: dict, largest: dict, stop: threading.Event
) -> None:
    """Sample the RSS (MiB) of each service's process group, keeping the peak of the
    group's sum (``peaks``) and of its largest process (``largest``)."""
    while not stop.is_set():
        for name, service in services.items():
            sizes = [_rss_kib(pid) / 1024 for pid in _group(service.popen.pid)] or [0.0]
            peaks[name] = max(peaks.get(name, 0.0), sum(sizes))
            largest[name] = max(largest.get(name, 0.0), max(sizes))
        time.sleep(0.2)


def _group(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except ProcessLookupError:
                continue
    return pids


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def offer(base_url: str, secret: str, rate: int, seconds: int) -> dict[str, float]:
    """POST ``rate`` webhooks a second for ``seconds``; when each POST started."""
    posted: dict[str, float] = {}
    poster = requests.Session()
    start = time.perf_counter()
    for number in range(rate * seconds):
        due = start + number / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        body, headers, wamid = webhook(number, secret)
        posted[wamid] = time.perf_counter()
        response = poster.post(
            f"{base_url}/api/v1/webhooks/whatsapp", data=body, headers=headers, timeout=10
        )
        response.raise_for_status()
    return posted


@contextlib.contextmanager
def embedded() -> Iterator[Stack]:
    """``snorq run``'s environment in a scratch instance folder (it makes its own keys)."""
    logs = Path(tempfile.mkdtemp(prefix="snorq-embedded-"))
    env = stack_env("", "", logs / "instance")
    for production_only in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SNORQ_ENCRYPTION_KEYS"):
        del env[production_only]
    deployment = Stack(env, logs)
    deployment.run("migrate")
    try:
        yield deployment
    finally:
        deployment.stop_all()


#: The processes each way of running SNORQ takes, by name: the Procfile's defaults (not
#: the lighter settings of the test stacks), or `snorq run` alone.
MODES = {
    "postgres": (
        lambda: stack(WORKER_PROCESSES="2", WEB_THREADS="32"),
        {"web": None, "worker": None},
    ),
    "embedded": (
        embedded,
        {"web": "snorq run --host 127.0.0.1 --port ${PORT}"},
    ),
}


def run(rate: int, seconds: int, mode: str) -> dict:
    deploy, processes = MODES[mode]
    with deploy() as deployment:
        organization = deployment.run("create-org", "Bench")
        deployment.run(
            "create-user", "--org", organization, "--email", STAFF, "--password", PASSWORD
        )
        deployment.run(
            "add-connection",
            "--org",
            organization,
            "--platform",
            "whatsapp",
            "--account-id",
            ACCOUNT,
            "--access-token",
            "bench-token",
        )
        services = {kind: deployment.start(kind, command) for kind, command in processes.items()}
        time.sleep(3)
        arrived: dict[str, float] = {}
        peaks: dict[str, float] = {}
        largest: dict[str, float] = {}
        stop = threading.Event()
        browser = signed_in(deployment.url)
        threads = [
            threading.Thread(target=listen, args=(deployment.url, browser, arrived, stop)),
            threading.Thread(target=peak_memory, args=(services, peaks, largest, stop)),
        ]
        for thread in threads:
            thread.start()
        time.sleep(1)
        posted = offer(deployment.url, deployment.env["WHATSAPP_APP_SECRET"], rate, seconds)
        deadline = time.monotonic() + 60
        while len(arrived) < len(posted) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(10)
    latencies = sorted((arrived[w] - posted[w]) * 1000 for w in posted if w in arrived)
    return {
        "mode": mode,
        "rate": rate,
        "posted": len(posted),
        "arrived": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "peak_rss_mib": peaks,
        "largest_process_rss_mib": largest,
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50, help="webhooks a second")
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TMPDIR", tempfile.gettempdir())
    figures = {mode: run(args.rate, args.seconds, mode) for mode in MODES}
    (RESULTS / "e2e.json").write_text(json.dumps(figures, indent=2))
    deployed, alone = figures["postgres"], figures["embedded"]
    print_table(
        f"Webhook POST → websocket event ({args.rate} webhooks/s for {args.seconds} s)",
        [
            ("figure", "Procfile web + worker, PostgreSQL + Redis", "embedded `snorq run`"),
            *[
                (name, show(deployed), show(alone))
                for name, show in (
                    ("events received", lambda f: f"{f['arrived']}/{f['posted']}"),
                    ("latency p50", lambda f: f"{f['p50_ms']:.1f} ms"),
                    ("latency p99", lambda f: f"{f['p99_ms']:.1f} ms"),
                )
            ],
            (
                "peak memory (all processes)",
                " + ".join(f"{deployed['peak_rss_mib'][k]:.0f}" for k in ("web", "worker"))
                + " MiB (web + worker)",
                f"{alone['peak_rss_mib']['web']:.0f} MiB",
            ),
            (
                "largest process",
                " / ".join(
                    f"{deployed['largest_process_rss_mib'][k]:.0f}" for k in ("web", "worker")
                )
                + " MiB (web / worker)",
                f"{alone['largest_process_rss_mib']['web']:.0f} MiB",
            ),
        ],
    )
    return figures


if __name__ == "__main__":
    main()
