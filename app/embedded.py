"""``snorq run``: web, worker and clock in one process, for trying SNORQ with no servers.

The same code as the three deployed processes, started as threads: Werkzeug's
threaded server (so websockets work), a Dramatiq worker on the process's
broker, and the clock on a background scheduler. Ctrl-C stops all three.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

import click
from apscheduler.schedulers.background import BackgroundScheduler
from werkzeug.serving import WSGIRequestHandler, make_server

from app import sandbox as sandbox_mode
from app.config import Settings, get_settings

log = logging.getLogger("snorq")

WORKER_THREADS = 4

#: Modules that libraries import whenever they are installed and ``snorq run`` never
#: uses: fakeredis's JSON commands (about 1.3 MiB resident), and on SQLite peewee's
#: PostgreSQL drivers (psycopg2-binary brings its own libpq, OpenSSL, Kerberos and LDAP
#: libraries: about 7 MiB).
UNUSED_MODULES = ("jsonpath_ng",)
UNUSED_ON_SQLITE = ("psycopg2", "psycopg")

#: mallopt's parameter for the most arenas glibc's malloc may make (malloc.h).
M_ARENA_MAX = -8


class _RequestLog(WSGIRequestHandler):
    """Werkzeug's request log without query strings (an OAuth callback carries a code)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        self.log("info", '"%s %s" %s %s', self.command, path, code, size)


def run_embedded(host: str, port: int, *, sandbox: bool) -> None:
    # The sandbox's variables are defaults for the settings, so they go first.
    demo = sandbox_mode.prepare(host, port, sandbox, os.environ)
    settings = get_settings()
    for warning in settings.startup_warnings():
        log.warning(warning)
    leave_out_unused_modules(settings)
    _one_malloc_arena()

    import dramatiq

    from app import create_app
    from app.db import database, migrate
    from scheduler.jobs import add_jobs
    from workers.broker import QUEUES, broker

    with database.connection_context():
        migrate()
        if demo is not None:
            sandbox_mode.set_up_demo(demo)
            simulator = sandbox_mode.simulator_app(settings, demo)

    worker = dramatiq.Worker(
        broker, queues=set(QUEUES), worker_threads=WORKER_THREADS, worker_timeout=100
    )
    clock = BackgroundScheduler(timezone="UTC")
    add_jobs(clock)
    web = create_app(settings)
    if demo is not None:
        sandbox_mode.mount(web, simulator)
    server = make_server(host, port, web, threaded=True, request_handler=_RequestLog)

    signal.signal(signal.SIGTERM, _interrupt)
    worker.start()
    clock.start()
    log.info("SNORQ is running at http://%s:%d/ (Ctrl-C to stop)", host, port)
    if demo is not None:
        click.echo(sandbox_mode.welcome(demo), err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("Stopping")
    finally:
        server.server_close()
        clock.shutdown(wait=False)
        worker.stop(timeout=10_000)
        if demo is not None:
            simulator.extensions["simulator"].deliveries.close()


def leave_out_unused_modules(settings: Settings) -> None:
    """Make later imports of the modules ``snorq run`` never uses fail, as if they were
    not installed; peewee and fakeredis then go on without them. Call before either
    is imported."""
    unused = UNUSED_MODULES + (UNUSED_ON_SQLITE if settings.sqlite_path is not None else ())
    for name in unused:
        # A None entry in sys.modules makes `import name` raise ImportError.
        sys.modules.setdefault(name, None)


def _one_malloc_arena() -> None:
    """Have glibc's malloc serve every thread from one arena. Call before any thread starts.

    glibc gives each thread that allocates an arena of its own (up to eight per core),
    and each arena keeps what its thread freed: with this process's twenty-odd threads
    that was about 4 MiB more at the peak under load. The GIL serialises nearly all
    allocation here anyway, so the extra arenas bought no speed. (musl's mallopt
    ignores the parameter; other systems have no such arenas.)
    """
    if sys.platform == "linux":
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)


def _interrupt(signum, frame):
    raise KeyboardInterrupt
