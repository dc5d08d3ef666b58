"""What the benchmarks share: scratch servers, processes, load generation, the results table.

Every benchmark runs on 127.0.0.1 only, in a database and a Redis database of
its own that it removes afterwards, and stops every process it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import redis
import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

#: The Procfile's process settings, used for SNORQ and for every ceiling alike.
WEB_WORKERS = int(os.environ.get("WEB_CONCURRENCY", 2))
WEB_THREADS = int(os.environ.get("WEB_THREADS", 32))
WORKER_PROCESSES = int(os.environ.get("WORKER_PROCESSES", 2))
WORKER_THREADS = int(os.environ.get("WORKER_THREADS", 8))

APP_SECRETS = {
    "WHATSAPP_APP_SECRET": "bench-wa-secret",
    "FACEBOOK_APP_SECRET": "bench-fb-secret",
    "TIKTOK_CLIENT_SECRET": "bench-tt-secret",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh PostgreSQL database (its URL), dropped afterwards."""
    name = f"snorq_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@contextlib.contextmanager
def scratch_redis() -> Iterator[str]:
    """An empty Redis database number (its URL), emptied again afterwards."""
    for number in range(15, 0, -1):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
        if client.dbsize() == 0:
            break
    else:
        raise RuntimeError("no empty Redis database to benchmark in")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
    finally:
        client.flushdb()


def snorq_env(database_url: str, redis_url: str, **extra: str) -> dict:
    """The environment of a production-mode SNORQ process on the scratch servers."""
    instance = tempfile.mkdtemp(prefix="snorq-bench-")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-secret-key",
        "SNORQ_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SNORQ_INSTANCE_PATH": instance,
        "PYTHONPATH": str(ROOT),
        **APP_SECRETS,
        **extra,
    }
    return env


class Process:
    """A child process started for a benchmark, stopped (by its own PID) at the end."""

    def __init__(self, args: list[str], env: dict, log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.popen = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log_file.close()


def gunicorn(app: str, port: int, env: dict, log: Path, config: Path | None = None) -> Process:
    args = [
        str(BIN / "gunicorn"),
        app,
        "--worker-class",
        "gthread",
        "--workers",
        str(WEB_WORKERS),
        "--threads",
        str(WEB_THREADS),
        "--bind",
        f"127.0.0.1:{port}",
        "--keep-alive",
        "30",
    ]
    if config is not None:
        args += ["--config", str(config)]
    process = Process(args, env, log)
    wait_for_http(f"http://127.0.0.1:{port}/healthz", process)
    return process


def dramatiq_workers(module: str, env: dict, log: Path, *queues: str) -> Process:
    args = [
        str(BIN / "dramatiq"),
        module,
        "--processes",
        str(WORKER_PROCESSES),
        "--threads",
        str(WORKER_THREADS),
    ]
    if queues:
        args += ["--queues", *queues]
    return Process(args, env, log)


def wait_for_http(url: str, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"process exited; see {process.log}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s; see {process.log}")


def require(command: str, install_hint: str) -> None:
    if shutil.which(command) is None:
        sys.exit(f"{command} is needed for this benchmark: {install_hint}")


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
