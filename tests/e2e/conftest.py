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

import os
import secrets
from collections.abc import Iterator

import pytest

from tests import processes
from tests.e2e.deployment import ACCOUNTS, PLATFORMS, RECEIPT_DELAYS, Deployment
from tests.log_scan import leaks

STAFF = "agent@acme.test"


def _require_servers() -> None:
    if processes.servers_available():
        return
    where = f"PostgreSQL at {processes.PG_ADMIN_URL} and Redis at {processes.REDIS_URL}"
    if os.environ.get("SNORQ_TEST_DATABASE_URL"):
        pytest.fail(f"SNORQ_TEST_DATABASE_URL is set, but {where} do not both answer")
    pytest.skip(f"end-to-end tests need {where}; they do not both answer")


def _organization(stack: processes.Stack, password: str) -> tuple[str, str]:
    """A new organization and an API token of its staff member, made with the CLI."""
    organization_id = stack.run("create-org", "Acme e2e")
    stack.run("create-user", "--org", organization_id, "--email", STAFF, "--password", password)
    return organization_id, stack.run("create-token", "--email", STAFF)


@pytest.fixture(scope="package")
def deployment() -> Iterator[Deployment]:
    _require_servers()
    port = processes.free_port()
    with processes.stack(**processes.simulator_env(port), SNORQ_CLOCK_RUN_AT_START="1") as stack:
        password = secrets.token_urlsafe(16)
        organization_id, api_token = _organization(stack, password)
        tokens = {platform: f"e2e-{platform}-{secrets.token_hex(16)}" for platform in PLATFORMS}
        connections = {
            platform: int(
                stack.run(
                    "add-connection",
                    *("--org", organization_id, "--platform", platform),
                    *("--account-id", ACCOUNTS[platform], "--access-token", tokens[platform]),
                    *("--name", f"Acme {platform}"),
                )
            )
            for platform in PLATFORMS
        }
        stack.start_simulator(
            port,
            *(f"{p}:{ACCOUNTS[p]}:{tokens[p]}" for p in PLATFORMS),
            delays=RECEIPT_DELAYS,
        )
        stack.start("web")
        worker = stack.start("worker")
        processes.wait_for(
            lambda: "ready for action" in worker.output(), timeout=60, what="the worker starts"
        )
        running = Deployment(
            stack, f"http://127.0.0.1:{port}", organization_id, api_token, connections
        )
        running.forbid(password, *tokens.values())
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
