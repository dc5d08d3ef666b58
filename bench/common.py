"""What the benchmarks share: scratch servers, the Procfile's processes, load, the table.

Every benchmark runs on 127.0.0.1 only, in a PostgreSQL database and a Redis
database of its own (tests/processes.py) that it removes afterwards, runs SNORQ
and every ceiling with the Procfile's own web and worker settings, and stops
every process it started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

from tests.processes import (
    BIN,
    ROOT,
    Service,
    free_port,
    procfile,
    scratch_database,
    scratch_redis,
    wait_for,
)

__all__ = ["BIN", "ROOT", "free_port", "scratch_database", "scratch_redis", "wait_for"]

RESULTS = ROOT / "bench" / "results"

APP_SECRETS = {
    "WHATSAPP_APP_SECRET": "bench-wa-secret",
    "FACEBOOK_APP_SECRET": "bench-fb-secret",
    "TIKTOK_CLIENT_SECRET": "bench-tt-secret",
}


def snorq_env(database_url: str, redis_url: str, **extra: str) -> dict:
    """The environment of a production-mode SNORQ process on the scratch servers."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-secret-key",
        "SNORQ_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SNORQ_INSTANCE_PATH": tempfile.mkdtemp(prefix="snorq-bench-"),
        "PYTHONPATH": str(ROOT),
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOST": "127.0.0.1",
        **APP_SECRETS,
        **extra,
    }


def snorq(env: dict, *args: str) -> str:
    """Run ``snorq ARGS``; the last line it printed."""
    done = subprocess.run(
        [str(BIN / "snorq"), *args], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    return done.stdout.strip().splitlines()[-1]


def gunicorn(app: str, port: int, env: dict, logs: Path, config: Path | None = None) -> Service:
    """The Procfile's web command serving ``app`` on ``port``, once it answers."""
    command = procfile()["web"].replace("'app:create_app()'", f"'{app}'")
    if config is not None:
        command += f" --config {config}"
    name = app.split(":")[-1].strip("()")
    service = Service(f"web-{name}", command, {**env, "PORT": str(port)}, logs)
    url = f"http://127.0.0.1:{port}/healthz"
    wait_for(lambda: answers(url) or _exited(service), timeout=60, what=f"{name} answering")
    if not service.running:
        raise RuntimeError(f"{name} exited:\n{service.output()[-3000:]}")
    return service


def dramatiq_workers(module: str, env: dict, logs: Path, *queues: str) -> Service:
    """The Procfile's worker command running ``module``'s actors on ``queues``."""
    command = procfile()["worker"].replace("dramatiq workers", f"dramatiq {module}")
    if queues:
        command += " --queues " + " ".join(queues)
    return Service(f"worker-{module}", command, env, logs)


def answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


def _exited(service: Service) -> bool:
    return not service.running


def require(command: str, install_hint: str) -> None:
    """Stop with a clear message when a tool the benchmark needs is missing."""
    if shutil.which(command) is None:
        sys.exit(f"{command} is needed for this benchmark: {install_hint}")


def drain_rate(total: int, progress, workers: Service) -> float:
    """Items/s between 10% and 90% done, polling ``progress()``."""
    marks: dict[float, tuple[float, int]] = {}
    deadline = time.monotonic() + 600
    while 0.9 not in marks and time.monotonic() < deadline:
        done, now = progress(), time.monotonic()
        for share in (0.1, 0.9):
            if done >= total * share and share not in marks:
                marks[share] = (now, done)
        if not workers.running:
            raise RuntimeError(f"workers exited:\n{workers.output()[-3000:]}")
        time.sleep(0.05)
    (t1, n1), (t2, n2) = marks[0.1], marks[0.9]
    return (n2 - n1) / (t2 - t1)


def noop_rate(redis_url: str, total: int, logs: Path) -> float:
    """The drain rate of a no-op actor with the Procfile's worker settings: the ceiling."""
    os.environ["REDIS_URL"] = redis_url
    from bench.ceilings import broker, noop

    for _ in range(total):
        noop.send()
    env = snorq_env("postgresql://unused", redis_url)
    workers = dramatiq_workers("bench.ceilings", env, logs, "bench")
    try:
        return drain_rate(total, lambda: total - broker.do_qsize("bench"), workers)
    finally:
        workers.stop()


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{headers}
local pause = {pause_ms}
function delay() return pause end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK-RESULT {{\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, "
    .. "\\"p99_us\\": %d, \\"errors\\": %d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def wrk(
    url: str,
    body: bytes,
    headers: dict,
    *,
    seconds: int,
    connections: int,
    rate: int | None = None,
) -> dict:
    """POST ``body`` to ``url`` with wrk; at most ``rate`` requests/s if given.

    Returns:
      requests per second, p50 and p99 latency in ms, and the error count.
    """
    pause_ms = 0 if rate is None else connections * 1000 // rate
    header_lines = "\n".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()
    )
    script = _WRK_SCRIPT.format(
        body=json.dumps(body.decode()), headers=header_lines, pause_ms=pause_ms
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    threads = min(2, connections)
    output = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "-s",
            handle.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(handle.name)
    line = next(x for x in output.splitlines() if x.startswith("WRK-RESULT "))
    raw = json.loads(line.removeprefix("WRK-RESULT "))
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["errors"],
        "requests": raw["requests"],
    }


def print_table(title: str, rows: list[tuple]) -> None:
    """Print ``(name, value, unit, ceiling name, ratio)`` rows as an aligned table."""
    print(f"\n{title}")
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  "
            + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        )
