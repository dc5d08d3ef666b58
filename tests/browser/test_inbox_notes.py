"""Two staff members in two browsers: one writes a private note and labels a
conversation, the other sees both live; canned responses come in by ``/shortcut``.

The note must reach no platform: the simulator's record of calls is checked for it.
With ``SNORQ_SCREENSHOTS=docs`` the second staff member's page is also saved as
``docs/team-inbox-notes.png`` for the README.
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_inbox_live import mark, row, still_marked
from tests.e2e.deployment import ACCOUNTS, Deployment
from tests.processes import ROOT

pytestmark = pytest.mark.browser

CUSTOMER = ("15550001234", "Marta Ruiz")
QUESTION = "Hola! My parcel says delivered but it is not here. Order 4471."
NOTE = "Checked with the courier: left with the neighbour at no. 12. Call her before 6."
LABEL = "Courier issue"
SHORTCUT = "courier"
CANNED = "I'm sorry about that! I've asked the courier and will get back to you today."


def open_conversation(page: Page) -> None:
    row(page, QUESTION).get_by_role("link").click()
    expect(page.locator("#thread-name")).to_have_text(CUSTOMER[1])


def test_a_note_and_a_label_reach_a_colleague_live_and_a_canned_response_is_inserted(
    deployment: Deployment, inbox: Page, colleague: Page, screenshot
):
    deployment.forbid(QUESTION, NOTE, CANNED)
    deployment.customer_writes("whatsapp", ACCOUNTS["whatsapp"], QUESTION, customer=CUSTOMER)
    for page in (inbox, colleague):
        open_conversation(page)
        mark(page)
    deployment.finished("both staff members have the conversation open")

    # The admin adds a label and a canned response in the "Labels & replies" dialog.
    inbox.get_by_role("button", name="Labels & replies").click()
    inbox.get_by_label("Name").fill(LABEL)
    inbox.get_by_role("button", name="Add label").click()
    expect(inbox.locator("#manage-labels")).to_contain_text(LABEL)
    inbox.get_by_label("Shortcut").fill(SHORTCUT)
    inbox.get_by_label("Text").fill(CANNED)
    inbox.get_by_role("button", name="Add canned response").click()
    expect(inbox.locator("#manage-canned")).to_contain_text(f"/{SHORTCUT}")
    inbox.get_by_role("button", name="Close").click()

    inbox.get_by_role("tab", name="Private note").click()
    expect(inbox.locator("#reply-text")).to_be_hidden()
    expect(inbox.locator(".note-hint")).to_contain_text("never sent to the customer")
    inbox.get_by_label("Private note").fill(NOTE)
    inbox.get_by_label("Private note").press("Enter")
    expect(inbox.locator("#message-list .note", has_text=NOTE)).to_be_visible()
    card = colleague.locator("#message-list .note", has_text=NOTE)
    expect(card).to_be_visible()
    expect(card).to_contain_text("Private note")
    expect(card).to_contain_text("agent@acme.test")
    deployment.finished("the colleague sees the note, live")

    inbox.get_by_role("button", name="Labels", exact=True).click()
    inbox.locator("#labels-menu .label-choice", has_text=LABEL).locator("input").check()
    expect(inbox.locator("#thread-labels")).to_contain_text(LABEL)
    expect(colleague.locator("#thread-labels .label-chip")).to_have_text(LABEL)
    expect(row(colleague, QUESTION).locator(".label-chip")).to_have_text(LABEL)
    deployment.finished("the colleague sees the label in the thread and on the row, live")

    colleague.get_by_label("Filter by label").select_option(label=LABEL)
    expect(colleague.locator("#conversations li")).to_have_count(1)
    expect(row(colleague, QUESTION)).to_be_visible()

    inbox.get_by_role("tab", name="Reply").click()
    reply = inbox.get_by_label("Reply")
    reply.fill("")
    reply.press_sequentially(f"/{SHORTCUT[:3]}")
    suggestion = inbox.locator("#reply-suggestions .suggestion", has_text=f"/{SHORTCUT}")
    expect(suggestion).to_be_visible()
    reply.press("Tab")
    expect(reply).to_have_value(CANNED)
    expect(inbox.locator("#reply-suggestions")).to_be_hidden()
    deployment.finished("/shortcut and Tab put the canned response in the reply box")

    screenshot(colleague, "colleague")
    if os.environ.get("SNORQ_SCREENSHOTS") == "docs":
        colleague.screenshot(path=ROOT / "docs" / "team-inbox-notes.png")
    calls = deployment.platform_calls("whatsapp", ACCOUNTS["whatsapp"])
    assert not [call for call in calls if re.search("courier: left", str(call))]
    assert still_marked(inbox) and still_marked(colleague), "a page reloaded"
