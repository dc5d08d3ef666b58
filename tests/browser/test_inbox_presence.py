"""Who else is here, in two browsers: two staff members on the same conversation.

Ana (the deployment's staff member) has a customer's conversation open. Bea, a
colleague signed in in a browser of her own, opens it too: Ana's header says Bea
is viewing, then typing while Bea writes a reply she has not sent, then viewing
again once Bea stops, and nothing once Bea has gone. Each page only ever learns
this through its live socket; neither reloads.

With ``SNORQ_SCREENSHOTS=docs`` the moment Ana sees Bea typing is saved as
``docs/team-inbox-presence.png`` (the README's picture).
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.deployment import ACCOUNTS, Deployment
from tests.processes import ROOT

pytestmark = pytest.mark.browser

COLLEAGUE = "bea@acme.test"
#: A customer of their own, so the conversation is this test's alone.
CUSTOMER = ("447700900123", "Priya Raman")
QUESTION = "Hello! Could I change the delivery address on order 4471?"
#: What Bea writes and never sends: no process may log it, no event may carry it.
DRAFT = "Of course, which address should we use inst"


def open_conversation(page: Page) -> None:
    page.locator("#conversations li", has_text=QUESTION).get_by_role("link").click()
    expect(page.locator("#message-list .msg.in", has_text=QUESTION)).to_be_visible()


def test_a_colleague_viewing_and_typing_in_the_same_conversation_shows_live_and_clears(
    deployment: Deployment, inbox: Page, colleague: Page, screenshot
):
    deployment.forbid(QUESTION, DRAFT)
    deployment.customer_writes("whatsapp", ACCOUNTS["whatsapp"], QUESTION, customer=CUSTOMER)
    open_conversation(inbox)
    inbox.evaluate("() => { window.notReloaded = true; }")
    others = inbox.locator("#thread-presence")
    expect(others).to_be_hidden()

    open_conversation(colleague)
    expect(others).to_have_text("bea is viewing")
    expect(colleague.locator("#thread-presence")).to_have_text("agent is viewing")
    deployment.finished("each sees the other viewing")

    colleague.get_by_label("Reply").press_sequentially(DRAFT, delay=40)
    expect(others).to_have_text("bea is typing…")
    deployment.finished("Ana sees Bea typing")
    path = screenshot(inbox, "1-typing")
    if os.environ.get("SNORQ_SCREENSHOTS"):
        target = ROOT / os.environ["SNORQ_SCREENSHOTS"] / "team-inbox-presence.png"
        target.write_bytes(path.read_bytes())
    expect(others).to_have_text("bea is viewing")
    deployment.finished("Bea stopped typing: viewing again")

    colleague.goto("/connections")
    expect(others).to_be_hidden()
    deployment.finished("Bea left: nobody else is here")
    screenshot(inbox, "2-left")
    assert inbox.evaluate("() => window.notReloaded === true"), "Ana's page reloaded"
