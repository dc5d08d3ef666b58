"""SNORQ as deployed, for end-to-end tests, fault tests and benchmarks.

Starts the Procfile's own commands (web, worker, clock) as separate processes on
a scratch PostgreSQL database and Redis database, each in its own process group
so a test can kill one outright, and stops every process it started.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psycopg2
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get(
    "SNORQ_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SNORQ_TEST_REDIS_SERVER", "redis://127.0.0.1:6379")
#: The Graph API version SNORQ is pointed at on a simulator.
GRAPH_VERSION = "v25.0"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Call ``condition`` until it returns something truthy, and return that.

    Raises:
      TimeoutError: it did not within ``timeout`` seconds; the message names ``what``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


def servers_available() -> bool:
    """Whether the machine's PostgreSQL and Redis answer."""
    try:
        psycopg2.connect(PG_ADMIN_URL, connect_timeout=2).close()
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except (psycopg2.Error, redis.RedisError):
        return False
    return True


@contextlib.contextmanager
def scratch_database(prefix: str = "snorq_scratch") -> Iterator[str]:
    """A fresh PostgreSQL database (its URL) named ``<prefix>_<random>``, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
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
    """An empty Redis database number on the machine's Redis (its URL), emptied afterwards.

    The test suite's own database (``SNORQ_TEST_REDIS_URL``) is never taken: the
    suite empties it before every test.
    """
    suite = redis.Redis.from_url(os.environ.get("SNORQ_TEST_REDIS_URL") or REDIS_URL)
    for number in range(15, 0, -1):
        if number == suite.connection_pool.connection_kwargs.get("db"):
            continue
        client = redis.Redis.from_url(f"{REDIS_URL}/{number}")
        if client.dbsize() == 0 and client.set("snorq:scratch:claimed", "1", nx=True):
            break
    else:
        raise RuntimeError("no empty Redis database available")
    try:
        yield f"{REDIS_URL}/{number}"
    finally:
        client.flushdb()


def procfile() -> dict[str, str]:
    """The Procfile's commands by process type."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if re.match(r"^\w+: ", line))


class Service:
    """One process, in its own process group, with its output in a log file."""

    def __init__(self, name: str, command: str, env: dict, logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, with no chance to clean up."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 20) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of its output."""
        return "\n".join(self.output().splitlines()[-lines:])


class Stack:
    """SNORQ's processes on one database and Redis; start and stop them at will."""

    def __init__(self, env: dict, logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.services: list[Service] = []

    def run(self, *args: str) -> str:
        """Run ``snorq ARGS`` against this stack; its last line of output."""
        done = subprocess.run(
            [str(BIN / "snorq"), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    def start(self, kind: str, command: str | None = None) -> Service:
        service = Service(kind, command or procfile()[kind], self.env, self.logs)
        self.services.append(service)
        if kind == "web":
            self.wait_until_ready(service)
        return service

    def start_simulator(
        self, port: int, *accounts: str, delays: str = "0.2,0.6", throughput: tuple[str, ...] = ()
    ) -> Service:
        """The platform simulator on ``port``, sending its webhooks to this stack.

        It signs them with the stack's app secrets; point SNORQ at it with
        :func:`simulator_env` when making the stack.

        Parameters:
          accounts: ``PLATFORM:ACCOUNT_ID:TOKEN[:REFRESH_TOKEN]``, tokens it accepts.
          delays: ``MIN,MAX`` seconds the customer's phone takes for each receipt.
          throughput: ``PLATFORM=COUNT/SECONDS``, a platform's own limit per account.
        """
        options = "".join(f" --account {shlex.quote(spec)}" for spec in accounts)
        options += "".join(f" --throughput {shlex.quote(spec)}" for spec in throughput)
        command = (
            f"python -m app.simulator --port {port} --snorq-url {self.url} "
            f"--delays {delays}{options}"
        )
        service = self.start("simulator", command)
        self.wait_until_ready(service, url=f"http://127.0.0.1:{port}/_simulator/")
        return service

    def wait_until_ready(self, service: Service, timeout: float = 60, url: str = "") -> None:
        """Wait until ``url`` (the stack's ``/healthz`` by default) answers 2xx."""
        url = url or f"{self.url}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not service.running:
                raise RuntimeError(f"{service.name} exited:\n{service.output()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(url, timeout=1).ok:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{service.name} did not answer:\n{service.output()[-3000:]}")

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()

    def logs_text(self) -> str:
        return "\n".join(service.output() for service in self.services)


def simulator_env(port: int) -> dict[str, str]:
    """The settings that point SNORQ at a platform simulator listening on ``port``."""
    base = f"http://127.0.0.1:{port}"
    return {
        "GRAPH_API_URL": f"{base}/graph/{GRAPH_VERSION}",
        "FACEBOOK_AUTH_URL": f"{base}/facebook/{GRAPH_VERSION}/dialog/oauth",
        "TIKTOK_API_URL": f"{base}/tiktok/open_api/v1.3",
        "TIKTOK_AUTH_URL": f"{base}/tiktok/v2/auth/authorize/",
    }


def stack_env(database_url: str, redis_url: str, instance: Path, **extra: str) -> dict:
    """The environment of production-mode SNORQ processes for a test stack."""
    from cryptography.fernet import Fernet

    env = {
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "e2e-secret-key",
        "SNORQ_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SNORQ_INSTANCE_PATH": str(instance),
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": "2",
        "WEB_THREADS": "16",
        "WORKER_PROCESSES": "1",
        "WORKER_THREADS": "8",
        "WHATSAPP_APP_SECRET": "e2e-wa-secret",
        "WHATSAPP_VERIFY_TOKEN": "e2e-wa-verify",
        "FACEBOOK_APP_SECRET": "e2e-fb-secret",
        "FACEBOOK_VERIFY_TOKEN": "e2e-fb-verify",
        "TIKTOK_CLIENT_KEY": "e2e-tt-key",
        "TIKTOK_CLIENT_SECRET": "e2e-tt-secret",
    }
    env.update(extra)
    return env


@contextlib.contextmanager
def stack(**extra: str) -> Iterator[Stack]:
    """A migrated scratch deployment, with no process running yet."""
    with scratch_database() as database_url, scratch_redis() as redis_url:
        logs = Path(tempfile.mkdtemp(prefix="snorq-stack-"))
        running = Stack(stack_env(database_url, redis_url, logs / "instance", **extra), logs)
        running.run("migrate")
        try:
            yield running
        finally:
            running.stop_all()
