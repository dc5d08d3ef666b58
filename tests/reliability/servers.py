"""Outages a test can cause without touching the machine's shared servers.

- :class:`RedisServer`: a private ``redis-server`` configured as production runs
  it (append-only file, fsync on every write), that a test crashes and restarts.
- :class:`TcpProxy`: a TCP proxy in front of the shared PostgreSQL; cutting it
  closes every connection through it and refuses new ones, as a database that
  went down would, until it is restored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from tests import processes

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """A ``redis-server`` of the test's own, on 127.0.0.1, keeping its data in ``directory``.

    Restarting it on the same port and directory reloads its append-only file, so
    everything it acknowledged before a crash is there again.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = processes.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._popen: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return os.access(REDIS_SERVER, os.X_OK)

    def start(self, timeout: float = 10) -> None:
        """Start it and wait until it answers."""
        log = (self.directory / "redis.log").open("ab")
        self._popen = subprocess.Popen(
            [
                REDIS_SERVER,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.directory)),
                *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        processes.wait_for(
            lambda: self._answers(client), timeout=timeout, what="the private redis-server starts"
        )
        client.close()

    def _answers(self, client: redis.Redis) -> bool:
        if self._popen.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(self.directory / 'redis.log').read_text()}")
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def crash(self) -> None:
        """SIGKILL it: no shutdown, no final save; only what it had written survives."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signum)
        try:
            self._popen.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self._popen.pid, signal.SIGKILL)
            self._popen.wait()
        self._popen = None


class TcpProxy:
    """Forwards connections from a port of its own to ``target`` (``host``, ``port``).

    :meth:`cut` closes every connection and stops listening, so new connections
    are refused; :meth:`listen` (again) forwards them, on the same port.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = processes.free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.connections = 0

    def url_for(self, url: str) -> str:
        """``url`` (a PostgreSQL URL naming the target) going through this proxy instead."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{self.port}"))

    def listen(self) -> None:
        """Accept and forward connections (again, after a cut)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and close every open connection, on both sides."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_sockets, self._sockets = self._sockets, set()
        for sock in [listener, *open_sockets]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets |= {client, upstream}
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._sockets -= {source, sink}
