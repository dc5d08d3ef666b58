"""The inbox in a browser, live: messages arrive, replies tick, a dropped line catches up.

Customers write through the platform simulator; a staff member signs in through
the real form and works in Chromium. Nothing here reloads the page: each test
marks the page's ``window`` first and checks the mark is still there at the end.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.line import Line
from tests.e2e.deployment import ACCOUNTS, CUSTOMERS, Deployment

pytestmark = pytest.mark.browser

#: The first message of each platform's customer, as a shop's inbox gets them.
QUESTIONS = {
    "whatsapp": "Hi! Do you still have the linen jacket in size M?",
    "facebook": "Hello, are you open on Sunday afternoon?",
    "tiktok": "Saw your video! Does the green tote come in blue?",
}
ANSWER = "Yes, one left in sand. Shall I keep it for you until Saturday?"
FOLLOW_UP = "Yes please! I'll come by on Saturday morning."
#: What the customer writes while the staff member's connection is down.
BEFORE_THE_DROP = "One more thing: can I pay by card in the shop?"
DURING_THE_DROP = "And could you gift-wrap it? It's for my sister's birthday."
#: A reply's tick, in the order it may move.
TICKS = ["tick-pending", "tick-sent", "tick-delivered", "tick-read"]

#: Records the tick of every outbound message the thread draws (each status redraws it).
RECORD_TICKS = """() => {
  window.ticksDrawn = [];
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        const tick = node.nodeType === 1 && node.matches(".msg.out") && node.querySelector(".tick");
        if (!tick) continue;
        const status = [...tick.classList].find((name) => name.startsWith("tick-"));
        window.ticksDrawn.push([node.dataset.id, status]);
      }
    }
  }).observe(document.getElementById("message-list"), { childList: true });
}"""


def mark(page: Page) -> None:
    """Mark the page's window: a reload or a navigation would lose the mark."""
    page.evaluate("() => { window.notReloaded = true; }")


def still_marked(page: Page) -> bool:
    return page.evaluate("() => window.notReloaded === true")


def row(page: Page, text: str):
    """The conversation list's row whose preview is ``text``."""
    return page.locator("#conversations li", has_text=text)


def in_thread(page: Page, direction: str, text: str):
    return page.locator(f"#message-list .msg.{direction}", has_text=text)


def ticks_drawn(page: Page, message_id: str) -> list[str]:
    """The ticks the thread drew for one message, each change once."""
    drawn = [
        status for drawn_id, status in page.evaluate("window.ticksDrawn") if drawn_id == message_id
    ]
    return [status for i, status in enumerate(drawn) if i == 0 or status != drawn[i - 1]]


def test_customers_messages_appear_live_and_a_reply_ticks_from_sent_to_delivered_to_read(
    deployment: Deployment, inbox: Page, screenshot
):
    deployment.forbid(*QUESTIONS.values(), ANSWER, FOLLOW_UP)
    mark(inbox)

    for platform, question in QUESTIONS.items():
        deployment.customer_writes(platform, ACCOUNTS[platform], question)
        expect(row(inbox, question).locator(f".badge-{platform}")).to_be_visible()
    deployment.finished("each platform's customer shows in the list, live")
    expect(row(inbox, QUESTIONS["whatsapp"])).to_contain_text(CUSTOMERS["whatsapp"][1])
    screenshot(inbox, "1-arrived")

    row(inbox, QUESTIONS["whatsapp"]).get_by_role("link").click()
    expect(inbox.locator("#thread-name")).to_have_text(CUSTOMERS["whatsapp"][1])
    expect(in_thread(inbox, "in", QUESTIONS["whatsapp"])).to_be_visible()

    inbox.evaluate(RECORD_TICKS)
    composer = inbox.get_by_label("Reply")
    composer.fill(ANSWER)
    composer.press("Enter")
    expect(composer).to_have_value("")
    reply = in_thread(inbox, "out", ANSWER)
    expect(reply.locator(".tick")).to_have_class(re.compile(r"\btick-read\b"))
    expect(reply.locator(".tick")).to_have_attribute("aria-label", "Read")
    deployment.finished("the reply shows read")
    drawn = ticks_drawn(inbox, reply.get_attribute("data-id"))
    assert drawn in (TICKS, TICKS[1:]), drawn

    deployment.customer_writes("whatsapp", ACCOUNTS["whatsapp"], FOLLOW_UP)
    expect(in_thread(inbox, "in", FOLLOW_UP)).to_be_visible()
    expect(row(inbox, FOLLOW_UP)).to_be_visible()
    deployment.finished("the customer's answer shows in the open thread, live")
    follow_up = event_seq(deployment, FOLLOW_UP)
    deployment.wait(lambda: read_after(deployment, follow_up), "the open conversation is read")
    unread = row(inbox, FOLLOW_UP).locator(".count")
    expect(unread).to_have_count(0)
    # And it stays read: no answer the page asked for before the read brings the count back.
    inbox.wait_for_timeout(1000)
    assert unread.count() == 0
    screenshot(inbox, "2-replied")
    assert still_marked(inbox), "the page reloaded"


def event_seq(deployment: Deployment, text: str) -> int | None:
    """The sequence number of the live event announcing the message ``text``, once there is one."""
    for event in deployment.events():
        if event["type"] == "new:message" and event["data"]["message"]["content"] == text:
            return event["seq"]
    return None


def read_after(deployment: Deployment, seq: int) -> bool:
    """Whether a ``conversation:read`` event came after event ``seq``."""
    return any(e["type"] == "conversation:read" and e["seq"] > seq for e in deployment.events())


def test_a_message_that_arrives_while_the_line_is_down_appears_once_it_is_back(
    deployment: Deployment, inbox: Page, line: Line, screenshot
):
    deployment.forbid(BEFORE_THE_DROP, DURING_THE_DROP)
    deployment.customer_writes("whatsapp", ACCOUNTS["whatsapp"], BEFORE_THE_DROP)
    row(inbox, BEFORE_THE_DROP).get_by_role("link").click()
    expect(in_thread(inbox, "in", BEFORE_THE_DROP)).to_be_visible()
    mark(inbox)
    requested = []
    inbox.on("request", lambda request: requested.append(request.url))

    line.cut()
    expect(inbox.locator("#live-state")).to_have_text("Reconnecting…")
    inbox.context.set_offline(True)
    deployment.finished("the page knows its connection dropped")
    deployment.customer_writes("whatsapp", ACCOUNTS["whatsapp"], DURING_THE_DROP)
    missed = deployment.wait(
        lambda: event_seq(deployment, DURING_THE_DROP), "SNORQ stored the message meanwhile"
    )
    expect(in_thread(inbox, "in", DURING_THE_DROP)).to_have_count(0)
    screenshot(inbox, "1-down")

    requested.clear()
    line.restore()
    inbox.context.set_offline(False)
    expect(in_thread(inbox, "in", DURING_THE_DROP)).to_be_visible()
    expect(inbox.locator("#live-state")).to_have_text("Live")
    deployment.finished("the page caught up and is live again")
    screenshot(inbox, "2-caught-up")
    assert still_marked(inbox), "the page reloaded"
    asked = [int(since) for url in requested for since in re.findall(r"/events\?since=(\d+)", url)]
    assert asked and min(asked) < missed, f"no catch-up from before event {missed}: {requested}"
