"""A deployed SNORQ as the fault tests drive it: an organization, its staff, its connections.

The real CLI sets it up; staff act through the JSON API with an API token.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
import requests

from tests import processes
from tests.e2e.deployment import ACCOUNTS, PLATFORMS, SECRET_SETTINGS
from tests.reliability.platform_load import MARKER

STAFF = "agent@acme.test"
#: In every staff reply of these tests; no log line may hold it.
REPLY_MARKER = "parcel-is-on-its-way"


@dataclass
class Site:
    """A deployed SNORQ with one organization, its staff token and a connection per platform.

    Parameters:
      stack: Its processes (only the platform simulator runs when a test receives it).
      database_url: Its database, reached directly (never through a test's proxy).
      simulator_url: Where the platform simulator listens.
    """

    stack: processes.Stack
    database_url: str
    simulator_url: str
    organization_id: str = ""
    api_token: str = ""
    connections: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @property
    def signing_secrets(self) -> dict[str, str]:
        env = self.stack.env
        return {
            "whatsapp": env["WHATSAPP_APP_SECRET"],
            "facebook": env["FACEBOOK_APP_SECRET"],
            "tiktok": env["TIKTOK_CLIENT_SECRET"],
        }

    def broker(self) -> redis.Redis:
        """A client of the Redis the stack's processes use."""
        return redis.Redis.from_url(self.stack.env["REDIS_URL"], socket_connect_timeout=2)

    def set_up(self) -> None:
        """The organization, its staff member and API token, and the connections (CLI)."""
        run = self.stack.run
        self.organization_id = run("create-org", "Acme reliability")
        run(
            "create-user",
            "--org",
            self.organization_id,
            "--email",
            STAFF,
            "--password",
            self.password,
        )
        self.api_token = run("create-token", "--email", STAFF)
        for platform in PLATFORMS:
            self.tokens[platform] = f"rel-{platform}-{secrets.token_hex(16)}"
            self.connections[platform] = int(
                run(
                    "add-connection",
                    *("--org", self.organization_id, "--platform", platform),
                    *("--account-id", ACCOUNTS[platform]),
                    *("--access-token", self.tokens[platform], "--name", f"Acme {platform}"),
                )
            )

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """A call to the JSON API as the staff member."""
        headers = {"Authorization": f"Bearer {self.api_token}"}
        return requests.request(
            method, f"{self.stack.url}{path}", headers=headers, timeout=10, **kwargs
        )

    def conversations(self) -> dict[str, int]:
        """A conversation per platform (the latest), once each platform has one."""
        listed = self.api("GET", "/api/v1/conversations").json()["conversations"]
        found = {}
        for conversation in listed:
            found.setdefault(conversation["platform"], conversation["id"])
        return found if len(found) == len(PLATFORMS) else {}

    def reply(self, conversation_id: int, text: str) -> int:
        """Staff answer in a conversation; the reply's message id."""
        response = self.api(
            "POST", f"/api/v1/conversations/{conversation_id}/messages", json={"content": text}
        )
        assert response.status_code == 202, response.text
        return response.json()["message"]["id"]

    def simulator_accounts(self) -> list[str]:
        """``--account`` values making the simulator accept this site's tokens."""
        return [f"{p}:{ACCOUNTS[p]}:{self.tokens[p]}" for p in PLATFORMS]

    def start_worker(self) -> processes.Service:
        worker = self.stack.start("worker")
        processes.wait_for(
            lambda: "ready for action" in worker.output(), timeout=60, what="the worker starts"
        )
        return worker

    def credentials(self) -> dict[str, str]:
        """What the database may hold only encrypted or hashed, by name."""
        return {
            "the API token": self.api_token,
            "the staff password": self.password,
            **{f"the {platform} token": token for platform, token in self.tokens.items()},
        }

    def forbidden(self) -> set[str]:
        """What no process may ever log."""
        env = self.stack.env
        return {
            self.api_token,
            self.password,
            *self.tokens.values(),
            *(env[name] for name in SECRET_SETTINGS),
            MARKER,
            REPLY_MARKER,
        }

    def log_tails(self) -> str:
        return "\n".join(
            f"--- {service.name} ({service.log_path}) ---\n{service.tail()}"
            for service in self.stack.services
        )


def seconds_until(condition: Callable[[], object], bound: float) -> float | None:
    """Seconds until ``condition()`` holds (asked twice a second); None if not within ``bound``."""
    started = time.monotonic()
    try:
        processes.wait_for(condition, timeout=bound, what="", interval=0.5)
    except TimeoutError:
        return None
    return time.monotonic() - started
