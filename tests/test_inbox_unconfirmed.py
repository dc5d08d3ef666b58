"""A reply the platform never answered, as the inbox shows it in Chromium.

Not the Procfile's processes this time: the platform's fake has to time out,
and the simulator's receipts would settle the send before the timeout ends.
So the app runs embedded on a threaded server in this process, the real send
worker meets a read timeout, and a signed status webhook settles the reply
while the page watches.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
import requests
import responses
from playwright.sync_api import Page, expect, sync_playwright

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from tests.payloads import payload
from tests.platform_fakes import SEND_URLS, conversation, reply
from tests.support import signed
from tests.test_live_socket import server, session_cookie  # noqa: F401  (server: a fixture)
from workers.outbound import send_message

pytestmark = pytest.mark.browser


@pytest.fixture
def inbox(app, server, user) -> Iterator[Page]:  # noqa: F811
    """The inbox page of ``user`` in Chromium, signed in by its session cookie, in UTC."""
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    name, value = session_cookie(app, user).split("=", 1)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            base_url=f"http://{server}", viewport=VIEWPORT, locale="en-GB", timezone_id="UTC"
        )
        context.add_cookies([{"name": name, "value": value, "url": f"http://{server}"}])
        page = context.new_page()
        yield page
        browser.close()


@responses.activate
def test_an_unconfirmed_reply_says_until_when_snorq_waits_and_clears_once_settled(
    inbox, client, api_headers, worker, org, connections, user
):
    thread = conversation(org, connections["whatsapp"])
    message = reply(thread, user)
    responses.post(SEND_URLS["whatsapp"], body=requests.ReadTimeout("read timed out"))
    send_message.send(message.id)
    worker.drain()
    path = f"/api/v1/conversations/{thread.id}/messages"
    (shown,) = client.get(path, headers=api_headers).get_json()["messages"]
    until = datetime.datetime.fromisoformat(shown["unconfirmed_until"].removesuffix("Z"))

    inbox.goto(f"/?c={thread.id}")
    marker = inbox.locator(f'#message-list .msg.out[data-id="{message.id}"] .unconfirmed')
    expect(marker).to_have_text(
        f"⚠ Not confirmed — waiting for the platform until {until.hour}:{until:%M}"
    )
    assert "may have been delivered" in marker.get_attribute("title")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    inbox.screenshot(path=ARTIFACTS / "unconfirmed-reply.png")
    expect(inbox.locator("#live-state")).to_have_text("Live")

    status = payload("whatsapp", "status_sent")
    status["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = (
        f"snorq:{message.id}"
    )
    body, headers = signed("whatsapp", status)
    assert client.post("/api/v1/webhooks/whatsapp", data=body, headers=headers).status_code == 200
    worker.drain()

    expect(marker).to_have_count(0)
    reply_node = inbox.locator(f'#message-list .msg.out[data-id="{message.id}"]')
    expect(reply_node.locator(".tick")).to_have_attribute("aria-label", "Sent")
