"""End-to-end fixtures: SNORQ as deployed, with the platform simulator at the other end.

One deployment serves every test of this package: a scratch PostgreSQL database and
Redis database, the Procfile's ``web`` and ``worker`` as separate processes (the
refresh test adds the ``clock``), and ``python -m app.simulator`` playing WhatsApp,
Messenger and TikTok. The real CLI makes one organization, its staff member, an API
token and one connection per platform; the tests then act as customers (through the
simulator) and as staff (through the JSON API).

When ``SNORQ_TEST_DATABASE_URL`` is set (the CI run against real servers),
PostgreSQL and Redis must answer; otherwise the tests are skipped when they do not.

Every wait is bounded by ``WAIT``. A failing test reports when each of its steps
finished and the tail of every process's log; after every test, no process's log
may hold a token, a secret, or a message text the tests used.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.deployment import Deployment, deployed, require_servers
from tests.log_scan import leaks


@pytest.fixture(scope="package")
def deployment() -> Iterator[Deployment]:
    require_servers()
    with deployed() as running:
        yield running


@pytest.fixture(autouse=True)
def _timed_and_scanned(deployment: Deployment) -> Iterator[None]:
    """Time each test's steps; afterwards, no process's log may hold a forbidden value."""
    deployment.begin()
    yield
    found = leaks(deployment.stack.logs_text().splitlines(), deployment.forbidden)
    assert not found, "process logs leak a secret, a token or a message text:\n" + "\n".join(
        found[:20]
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    running = getattr(item, "funcargs", {}).get("deployment")
    if report.failed and running is not None:
        report.sections.append(("SNORQ end to end", running.report()))
