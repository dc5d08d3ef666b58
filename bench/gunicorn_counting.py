"""Gunicorn hooks that count requests per worker, to check the load was spread.

A run where one worker took nearly every connection measures one process, not
the deployment; the benchmarks report each worker's share.
"""

import json
import os

_served = {"requests": 0}


def post_request(worker, req, environ, resp):
    _served["requests"] += 1


def worker_exit(server, worker):
    folder = os.environ.get("BENCH_COUNTS_DIR")
    if folder:
        with open(os.path.join(folder, f"{worker.pid}.json"), "w") as handle:
            json.dump(_served, handle)
