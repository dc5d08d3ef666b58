"""Browser fixtures: Debian's Chromium, driven by Playwright, on SNORQ as deployed.

The deployment is the end-to-end tests' one (``tests/e2e/deployment.py``): the
Procfile's ``web`` and ``worker`` — plus, here, its ``clock`` — on a scratch
PostgreSQL database and Redis database, with ``python -m app.simulator`` playing
the platforms. Each test gets a fresh browser context, signed in through the
real sign-in form, that reaches SNORQ through a :class:`~tests.browser.line.Line`
the test can cut.

Chromium is the system's (``apt-get install chromium``), never one Playwright
downloads. Without it, or without PostgreSQL and Redis, the tests are skipped,
except in the CI run against real servers (``SNORQ_TEST_DATABASE_URL`` set),
where they fail instead.

Screenshots go to ``test-artifacts/browser/``: the steps each test names, and
the page whenever a test fails.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.line import Line
from tests.e2e.deployment import STAFF, WAIT, Deployment, deployed, require_servers, unavailable
from tests.log_scan import leaks
from tests.processes import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
#: A laptop's window: the list, the thread and the composer all in view.
VIEWPORT = {"width": 1280, "height": 720}


@pytest.fixture(scope="package")
def deployment() -> Iterator[Deployment]:
    """The deployment the browser talks to; skipped at once without Chromium or servers."""
    if not CHROMIUM.exists():
        unavailable(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    require_servers()
    with deployed() as running:
        running.stack.start("clock")
        yield running


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    expect.set_options(timeout=WAIT * 1000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def line(deployment: Deployment) -> Iterator[Line]:
    """The browser's line to SNORQ's web process."""
    relay = Line(deployment.stack.port)
    yield relay
    relay.close()


@pytest.fixture
def inbox(
    browser: Browser, deployment: Deployment, line: Line, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """The inbox page of the staff member, signed in and live.

    Afterwards no script on the page may have thrown.
    """
    context = browser.new_context(base_url=line.url, viewport=VIEWPORT, locale="en-GB")
    context.set_default_timeout(WAIT * 1000)
    page = context.new_page()
    request.node.page_log = log = []
    page.on("pageerror", lambda error: log.append(f"uncaught: {error}"))
    page.on("console", lambda message: log.append(f"console.{message.type}: {message.text}"))
    sign_in(page, deployment)
    yield page
    context.close()
    thrown = [entry for entry in log if entry.startswith("uncaught")]
    assert not thrown, f"scripts on the page threw: {thrown}"


@pytest.fixture
def colleague(
    browser: Browser, deployment: Deployment, line: Line, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A second staff member of the organization (not an admin), signed in and live.

    Their email is the test module's ``COLLEAGUE`` if it names one; ``page.email`` says it.
    """
    email = getattr(request.module, "COLLEAGUE", f"colleague-{secrets.token_hex(4)}@acme.test")
    password = secrets.token_urlsafe(16)
    deployment.forbid(password)
    org = deployment.organization_id
    deployment.stack.run("create-user", "--org", org, "--email", email, "--password", password)
    context = browser.new_context(base_url=line.url, viewport=VIEWPORT, locale="en-GB")
    context.set_default_timeout(WAIT * 1000)
    page = context.new_page()
    thrown = []
    page.on("pageerror", lambda error: thrown.append(str(error)))
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#live-state")).to_have_text("Live")
    page.email = email
    yield page
    context.close()
    assert not thrown, f"scripts on the colleague's page threw: {thrown}"


def sign_in(page: Page, deployment: Deployment) -> None:
    """Sign in through the form the inbox sends a stranger to."""
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(STAFF)
    page.get_by_label("Password").fill(deployment.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"^http://[^/]+/$"))
    expect(page.locator("#live-state")).to_have_text("Live")
    deployment.finished("signed in; the inbox is live")


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """``screenshot(page, step)``: the page, saved as ``<test>-<step>.png`` in the artifacts."""

    def save(page: Page, step: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{step}.png"
        page.screenshot(path=path)
        return path

    return save


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
    if not report.failed:
        return
    page = getattr(item, "funcargs", {}).get("inbox")
    if page is not None and not page.is_closed():
        path = ARTIFACTS / f"{item.name}-FAILED.png"
        page.screenshot(path=path)
        log = "\n".join(getattr(item, "page_log", [])[-40:])
        report.sections.append(("Browser", f"The page when it failed: {path}\n{log}"))
    running = getattr(item, "funcargs", {}).get("deployment")
    if running is not None:
        report.sections.append(("SNORQ end to end", running.report()))
