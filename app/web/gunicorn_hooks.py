"""gunicorn settings for the web process: its workers' metrics, added up.

Used as ``gunicorn --config python:app.web.gunicorn_hooks`` (the Procfile does).
gunicorn runs several worker processes and a scrape reaches one of them, so each
keeps its metrics in files in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds
them all up (prometheus_client's multiprocess mode). The master prepares the
directory before it forks a worker — a new temporary one unless the variable
names one, which it empties — and forgets a worker's live gauges once it exits.

prometheus_client chooses its mode when it is first imported, so nothing here
imports it before the variable is set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: The temporary directory ``on_starting`` made, removed when gunicorn exits.
_made: list[str] = []


def on_starting(server) -> None:
    """Give the workers an empty metrics directory (before the first one is forked)."""
    configured = os.environ.get(_VARIABLE)
    if not configured:
        os.environ[_VARIABLE] = tempfile.mkdtemp(prefix="snorq-web-metrics-")
        _made.append(os.environ[_VARIABLE])
        return
    directory = Path(configured)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    """Drop an exited worker's live gauges (its open websockets are gone with it)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the temporary directory ``on_starting`` made."""
    for directory in _made:
        shutil.rmtree(directory, ignore_errors=True)
