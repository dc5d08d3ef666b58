"""Fault tests: SNORQ as deployed, broken on purpose, and what it kept.

Each test deploys the Procfile's processes on a scratch PostgreSQL database and
Redis (``tests/processes.py``), sets up an organization with one connection per
platform through the real CLI, then breaks something while traffic flows: a
worker killed with SIGKILL, Redis crashed, PostgreSQL cut off, a platform storm.

When ``SNORQ_TEST_DATABASE_URL`` is set (the CI run against real servers), the
servers must answer; otherwise the tests are skipped when they do not.

Every test writes its figures (sent, stored, duplicated, lost, recovery times) to
``test-artifacts/reliability/<scenario>.json``, prints a one-line summary that the
terminal summary repeats, and, after it ends, every process's log is searched for
secrets, tokens and message texts, and the database for tokens and passwords in
the clear: any found fails the test.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from tests import processes
from tests.log_scan import leaks
from tests.reliability import evidence
from tests.reliability.servers import REDIS_SERVER, RedisServer, TcpProxy
from tests.reliability.site import Site

ARTIFACTS = processes.ROOT / "test-artifacts" / "reliability"
#: Seconds the fake customer's phone takes for each receipt.
RECEIPT_DELAYS = "0.1,0.5"

_SUMMARIES = pytest.StashKey[list[str]]()
_SITES = pytest.StashKey[list[Site]]()


def require_servers() -> None:
    if processes.servers_available():
        return
    where = f"PostgreSQL at {processes.PG_ADMIN_URL} and Redis at {processes.REDIS_URL}"
    if os.environ.get("SNORQ_TEST_DATABASE_URL"):
        pytest.fail(f"SNORQ_TEST_DATABASE_URL is set, but {where} do not both answer")
    pytest.skip(f"fault tests need {where}; they do not both answer")


@pytest.fixture
def deploy(request: pytest.FixtureRequest) -> Iterator[Callable[..., Site]]:
    """Deploys a :class:`Site` with extra settings; its processes' logs are scanned after.

    The platform simulator runs from the start (the platforms' APIs answer, as they
    do in production: profile lookups, media, sends), with ``throughput`` limits.
    """
    require_servers()
    sites: list[Site] = []
    request.node.stash[_SITES] = sites
    with contextlib.ExitStack() as exits:

        def make(*, throughput: tuple[str, ...] = (), **env: str) -> Site:
            port = processes.free_port()
            stack = exits.enter_context(processes.stack(**processes.simulator_env(port), **env))
            site = Site(stack, stack.env["DATABASE_URL"], f"http://127.0.0.1:{port}")
            site.set_up()
            sites.append(site)
            stack.start_simulator(
                port, *site.simulator_accounts(), delays=RECEIPT_DELAYS, throughput=throughput
            )
            return site

        yield make
        for site in sites:
            stored = evidence.database_text(site.database_url)
            readable = [name for name, value in site.credentials().items() if value in stored]
            assert not readable, f"the database holds these in the clear: {readable}"
    for site in sites:
        found = leaks(site.stack.logs_text().splitlines(), site.forbidden())
        assert not found, "process logs leak a secret, a token or a message text:\n" + "\n".join(
            found[:20]
        )


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    """A private Redis (append-only, fsync always) a test may crash and restart."""
    if not RedisServer.available():
        pytest.fail(f"this fault test needs redis-server at {REDIS_SERVER}")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database_proxy() -> Iterator[TcpProxy]:
    """A proxy to the machine's PostgreSQL that a test may cut and restore."""
    target = urlsplit(processes.PG_ADMIN_URL)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 5432))
    proxy.listen()
    yield proxy
    proxy.cut()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str, dict], str]:
    """Writes a scenario's figures to ``test-artifacts/reliability/`` and summarises them."""

    def write(scenario: str, figures: dict) -> str:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        record = {
            "scenario": scenario,
            "test": request.node.nodeid,
            "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "database": "PostgreSQL",
            **figures,
        }
        (ARTIFACTS / f"{scenario}.json").write_text(json.dumps(record, indent=2) + "\n")
        line = summary(scenario, figures)
        request.config.stash.setdefault(_SUMMARIES, []).append(line)
        print(line)
        return line

    return write


#: The counts a summary line shows, when a scenario has them: the customers' messages,
#: then the staff replies (with how each group names them).
MESSAGE_COUNTS = {"sent": "sent", "stored": "stored", "duplicated": "duplicated", "lost": "lost"}
REPLY_COUNTS = {
    "replies_sent": "sent",
    "replies_failed": "failed",
    "replies_pending": "pending",
    "replies_accepted_twice_by_the_platform": "sent twice",
}


def summary(scenario: str, figures: dict) -> str:
    """One line: the exactly-once counts, then every timing (keys ending in ``_seconds``)."""
    counts = [f"{label} {figures[key]}" for key, label in MESSAGE_COUNTS.items() if key in figures]
    if "replies" in figures:
        of_replies = ", ".join(f"{label} {figures[key]}" for key, label in REPLY_COUNTS.items())
        counts.append(f"replies {figures['replies']} ({of_replies})")
    timings = ", ".join(
        f"{name.removesuffix('_seconds').replace('_', ' ')} "
        + ("NOT REACHED" if value is None else f"{value:.1f} s")
        for name, value in figures.items()
        if name.endswith("_seconds")
    )
    return f"{scenario}: {', '.join(counts)}; {timings}"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_SUMMARIES, [])
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for site in item.stash.get(_SITES, []):
            report.sections.append(("SNORQ processes", site.log_tails()))
