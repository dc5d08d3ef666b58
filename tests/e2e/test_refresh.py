"""The clock process refreshes a TikTok token before it expires, and sends use the new one."""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Iterator

import pytest

from tests import processes
from tests.e2e.deployment import CUSTOMERS, Deployment

pytestmark = pytest.mark.e2e

#: A second TikTok business account, whose token is about to expire.
ACCOUNT = "7312345678902"
#: Seconds SNORQ believes the token has left: well inside the refresh margin (6 h).
EXPIRES_IN = 600


@pytest.fixture
def expiring(deployment: Deployment) -> int:
    """A TikTok connection whose token expires soon; the platform already refuses it.

    The platform refusing the old token means a send can only succeed with the
    token the refresh brought.
    """
    stale = f"e2e-tiktok-stale-{secrets.token_hex(16)}"
    refresh = f"e2e-tiktok-refresh-{secrets.token_hex(16)}"
    deployment.forbid(stale, refresh)
    deployment.register("tiktok", ACCOUNT, stale, refresh_token=refresh, expires_in=0)
    return int(
        deployment.stack.run(
            *("add-connection", "--org", deployment.organization_id, "--platform", "tiktok"),
            *("--account-id", ACCOUNT, "--access-token", stale, "--refresh-token", refresh),
            *("--expires-in", str(EXPIRES_IN), "--name", "Acme TikTok (expiring)"),
        )
    )


@pytest.fixture
def clock(deployment: Deployment) -> Iterator[processes.Service]:
    """The Procfile's clock, running its jobs at start-up (SNORQ_CLOCK_RUN_AT_START=1)."""
    service = deployment.stack.start("clock")
    yield service
    service.stop()


def expires_after(deployment: Deployment, connection_id: int, moment: datetime.datetime):
    """The connection once its token expires after ``moment`` (naive UTC)."""
    connection = deployment.connection(connection_id)
    expiry = connection["token_expires_at"]
    if expiry and datetime.datetime.fromisoformat(expiry.removesuffix("Z")) > moment:
        return connection
    return None


def settled(deployment: Deployment, conversation_id: int, message_id: int):
    """The message once its send is no longer PENDING."""
    message = deployment.message(conversation_id, message_id)
    return None if message["status"] == "PENDING" else message


def test_the_clock_refreshes_an_expiring_token_and_the_next_send_uses_the_new_one(
    deployment, expiring, clock
):
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    connection = deployment.wait(
        lambda: expires_after(deployment, expiring, now + datetime.timedelta(hours=23)),
        "the clock's refresh stores a token good for a day",
    )
    assert connection["status"] == "ACTIVE"
    [refresh] = deployment.platform_calls("tiktok", ACCOUNT)
    assert (refresh["endpoint"], refresh["response"]["code"]) == ("token", 0)

    text = f"Hallo, ist die Jacke noch da? ({secrets.token_hex(4)})"
    answer = f"Ja, in Größe M ({secrets.token_hex(4)})"
    deployment.forbid(text, answer)
    customer, _ = CUSTOMERS["tiktok"]
    deployment.stack.run(
        *("simulate", "tiktok", "--url", deployment.stack.url, "--account-id", ACCOUNT),
        *("--from", customer, "--text", text),
    )
    conversation = deployment.wait(
        lambda: deployment.conversation_on(expiring), "the customer's message is listed"
    )
    [inbound] = deployment.messages(conversation["id"])
    assert inbound["content"] == text
    reply = deployment.reply(conversation["id"], answer)
    sent = deployment.wait(
        lambda: settled(deployment, conversation["id"], reply["id"]), "the reply is sent"
    )
    assert sent["status"] in ("SENT", "DELIVERED", "READ"), sent

    # The platform accepted the send at the first try: with the refreshed token, since
    # it refuses the old one, and with no second refresh.
    calls = deployment.platform_calls("tiktok", ACCOUNT)
    assert [(c["endpoint"], c["response"]["code"]) for c in calls] == [("token", 0), ("send", 0)]
