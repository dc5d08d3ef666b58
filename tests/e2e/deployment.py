"""The deployment the end-to-end tests drive, seen by a customer and by a staff script.

Customers write through the platform simulator's control endpoints; staff read and
reply through SNORQ's JSON API with an API token. Every wait is bounded by ``WAIT``
and timed, so a failing test can say which step took how long.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import pytest
import requests

from tests import processes

T = TypeVar("T")

#: Seconds any one step may take.
WAIT = 30.0
#: Seconds the fake customer's phone takes for each receipt: quick, yet not instant.
RECEIPT_DELAYS = "0.2,0.6"

#: The staff member the CLI makes.
STAFF = "agent@acme.test"
PLATFORMS = ("whatsapp", "facebook", "tiktok")
#: The account of each connection: phone-number id, Page id, TikTok business id.
ACCOUNTS = {"whatsapp": "106540352242922", "facebook": "1234567890", "tiktok": "7312345678901"}
#: Who writes on each platform: their id there (phone number, PSID, TikTok user id), name.
CUSTOMERS = {
    "whatsapp": ("15551234567", "Zoë Ångström"),
    "facebook": ("6543210987654321", "Björn Müller"),
    "tiktok": ("7123456789012345678", "Chloé Nguyễn"),
}
#: The stack's settings that are secrets (its app ids are not).
SECRET_SETTINGS = (
    "SECRET_KEY",
    "SNORQ_ENCRYPTION_KEYS",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "FACEBOOK_APP_SECRET",
    "FACEBOOK_VERIFY_TOKEN",
    "TIKTOK_CLIENT_SECRET",
)


class Deployment:
    """The running stack and simulator, seen by a customer and by a staff script.

    Parameters:
      stack: SNORQ's processes.
      simulator_url: Where the simulator listens.
      organization_id: The organization the API token belongs to.
      api_token: A staff member's API token.
      connections: The id of each platform's connection.
      password: The staff member's password (``STAFF`` is their email).
    """

    def __init__(
        self,
        stack: processes.Stack,
        simulator_url: str,
        organization_id: str,
        api_token: str,
        connections: dict[str, int],
        password: str,
    ) -> None:
        self.stack = stack
        self.simulator_url = simulator_url
        self.organization_id = organization_id
        self.connections = connections
        self.password = password
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {api_token}"
        self.forbidden = {api_token, *(stack.env[name] for name in SECRET_SETTINGS)}
        self.steps: list[str] = []
        self._started = time.monotonic()

    def forbid(self, *values: str) -> None:
        """Values no process may ever log (tokens, texts)."""
        self.forbidden.update(values)

    def begin(self) -> None:
        """A test starts: its steps are timed from now."""
        self.steps = []
        self._started = time.monotonic()

    def wait(self, condition: Callable[[], T], what: str) -> T:
        """``condition``'s first truthy value, within ``WAIT`` seconds; the step is timed."""
        try:
            value = processes.wait_for(condition, timeout=WAIT, what=what)
        except TimeoutError:
            self.finished(f"TIMED OUT: {what}")
            raise
        self.finished(what)
        return value

    def finished(self, step: str) -> None:
        """``step`` finished just now: the report lists it with the time since the start."""
        self.steps.append(f"{self._elapsed():6.2f} s  {step}")

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def report(self) -> str:
        """Each step's time, then the tail of each process's log."""
        parts = ["Steps (seconds since the test started):", *self.steps]
        for service in self.stack.services:
            parts += ["", f"--- {service.name} ({service.log_path}) ---", service.tail()]
        return "\n".join(parts)

    # -- staff: the JSON API ------------------------------------------------------------

    def get(self, path: str, **params) -> dict:
        response = self.api.get(f"{self.stack.url}{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def reply(self, conversation_id: int, content: str) -> dict:
        """Staff answer in a conversation; the reply as the API accepted it."""
        response = self.api.post(
            f"{self.stack.url}/api/v1/conversations/{conversation_id}/messages",
            json={"content": content},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return response.json()["message"]

    def conversation_on(self, connection_id: int) -> dict | None:
        """The conversation on a connection, once the API lists one."""
        listed = self.get("/api/v1/conversations")["conversations"]
        return next((c for c in listed if c["connection_id"] == connection_id), None)

    def messages(self, conversation_id: int) -> list[dict]:
        return self.get(f"/api/v1/conversations/{conversation_id}/messages")["messages"]

    def message(self, conversation_id: int, message_id: int) -> dict:
        return next(m for m in self.messages(conversation_id) if m["id"] == message_id)

    def connection(self, connection_id: int) -> dict:
        listed = self.get("/api/v1/connections")["connections"]
        return next(c for c in listed if c["id"] == connection_id)

    def events(self) -> list[dict]:
        """Every live event of the organization so far, in order."""
        return self.get("/api/v1/events", since=0)["events"]

    # -- customers and platforms: the simulator -----------------------------------------

    def customer_writes(
        self,
        platform: str,
        account_id: str,
        text: str = "",
        *,
        customer: tuple[str, str] | None = None,
        **media: bool,
    ) -> str:
        """A customer sends the account ``text``; the platform's message id.

        Parameters:
          customer: Their id on the platform and name (``CUSTOMERS[platform]`` by default).
          media: What the customer attaches, for the simulator: ``image=True``…
        """
        external_id, name = customer or CUSTOMERS[platform]
        response = requests.post(
            f"{self.simulator_url}/_simulator/customers/messages",
            json={
                "platform": platform,
                "account_id": account_id,
                "from": external_id,
                "name": name,
                "text": text,
                **media,
            },
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return response.json()["message_id"]

    def register(self, platform: str, account_id: str, access_token: str, **details) -> None:
        """Make the simulated platform hold a token (``refresh_token``, ``expires_in``…)."""
        spec = {"platform": platform, "account_id": account_id, "access_token": access_token}
        response = requests.post(
            f"{self.simulator_url}/_simulator/accounts", json=spec | details, timeout=10
        )
        assert response.status_code == 201, response.text

    def platform_calls(self, platform: str, account_id: str) -> list[dict]:
        """The API calls the simulated platform received for one account, in order."""
        response = requests.get(
            f"{self.simulator_url}/_simulator/requests",
            params={"platform": platform, "account_id": account_id},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["requests"]


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason``; fail instead in the CI run against real servers.

    That run (``SNORQ_TEST_DATABASE_URL`` set) must run every test, so nothing it
    needs may be missing.
    """
    if os.environ.get("SNORQ_TEST_DATABASE_URL"):
        pytest.fail(f"SNORQ_TEST_DATABASE_URL is set, but {reason}")
    pytest.skip(reason)


def require_servers() -> None:
    """Skip (or, in the real-servers run, fail) unless PostgreSQL and Redis answer."""
    if not processes.servers_available():
        where = f"PostgreSQL at {processes.PG_ADMIN_URL} and Redis at {processes.REDIS_URL}"
        unavailable(f"{where} do not both answer")


@contextlib.contextmanager
def deployed() -> Iterator[Deployment]:
    """The Procfile's ``web`` and ``worker`` on scratch servers, and the simulator.

    The real CLI makes one organization, its staff member (``STAFF``), an API
    token and one connection per platform, whose tokens the simulator accepts.
    The stack's clock, if a test starts it, runs its jobs at start-up.
    """
    port = processes.free_port()
    with processes.stack(**processes.simulator_env(port), SNORQ_CLOCK_RUN_AT_START="1") as stack:
        password = secrets.token_urlsafe(16)
        organization_id = stack.run("create-org", "Acme e2e")
        stack.run("create-user", "--org", organization_id, "--email", STAFF, "--password", password)
        api_token = stack.run("create-token", "--email", STAFF)
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
            stack, f"http://127.0.0.1:{port}", organization_id, api_token, connections, password
        )
        running.forbid(password, *tokens.values())
        yield running
