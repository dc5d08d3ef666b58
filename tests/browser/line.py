"""The browser's line to SNORQ, which a test can cut and restore like a dropped Wi-Fi.

A TCP relay on a port of its own: the browser talks to SNORQ through it, so
cutting it drops the page's websocket and every request in flight, and refuses
new connections, while SNORQ itself keeps running and receiving webhooks.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Line:
    """Relays connections to ``127.0.0.1:<port>`` to SNORQ at ``127.0.0.1:<target>``.

    Parameters:
      target: The port SNORQ's web process listens on.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._up = True
        threading.Thread(target=self._accept, name="line", daemon=True).start()

    def cut(self) -> None:
        """Drop every open connection, and each new one until :meth:`restore`."""
        with self._lock:
            self._up = False
            for sock in self._sockets:
                _drop(sock)
            self._sockets.clear()

    def restore(self) -> None:
        with self._lock:
            self._up = True

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if not self._up:
                    _drop(client)
                    continue
                try:
                    server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                except OSError:
                    _drop(client)
                    continue
                server.settimeout(None)
                self._sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy ``source`` to ``sink`` until either end goes; then close both."""
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with self._lock:
            for sock in (source, sink):
                self._sockets.discard(sock)
                _drop(sock)


def _drop(sock: socket.socket) -> None:
    """Close ``sock``; shutting it down first wakes the thread reading from it."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
