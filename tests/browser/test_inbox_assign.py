"""Two staff members in two browsers: one assigns a conversation to the other and
resolves it, the other sees both live; the customer's next message opens it again,
and both find it by search.

With ``SNORQ_SCREENSHOTS=docs`` the second staff member's page is also saved as
``docs/team-inbox-assign.png`` and ``docs/team-inbox-resolve.png``, and the first one's
search as ``docs/team-inbox-search.png``, for the README.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_inbox_live import mark, row, still_marked
from tests.e2e.deployment import ACCOUNTS, Deployment
from tests.processes import ROOT

pytestmark = pytest.mark.browser

COLLEAGUE = "cleo@acme.test"
CUSTOMER = ("15550004321", "Kofi Mensah")
QUESTION = "Hi! Can I change order 5120 to a size medium before it ships?"
FOLLOW_UP = "Sorry, one more thing: could it go to my office address instead?"


def docs_screenshot(page: Page, name: str) -> None:
    if os.environ.get("SNORQ_SCREENSHOTS") == "docs":
        page.screenshot(path=ROOT / "docs" / name)


def test_one_assigns_and_resolves_and_the_other_sees_it_live(
    deployment: Deployment, colleague: Page, inbox: Page, screenshot
):
    deployment.forbid(QUESTION, FOLLOW_UP)
    deployment.customer_writes("whatsapp", ACCOUNTS["whatsapp"], QUESTION, customer=CUSTOMER)
    # The colleague works from "Mine", where nothing is theirs yet.
    colleague.get_by_role("button", name="Mine", exact=True).click()
    expect(colleague.locator("#list-empty")).to_contain_text("assigned to you")
    row(inbox, QUESTION).get_by_role("link").click()
    expect(inbox.locator("#thread-name")).to_have_text(CUSTOMER[1])
    expect(inbox.locator("#thread-status")).to_have_text("Open")
    for page in (inbox, colleague):
        mark(page)

    inbox.get_by_label("Assignee").select_option(label=colleague.email)
    expect(row(inbox, QUESTION)).to_contain_text(f"→ {colleague.email.split('@')[0]}")
    expect(row(colleague, QUESTION)).to_contain_text("→ you")
    deployment.finished("the conversation arrives in the colleague's Mine list, live")

    row(colleague, QUESTION).get_by_role("link").click()
    expect(colleague.locator("#thread-name")).to_have_text(CUSTOMER[1])
    expect(colleague.locator("#assignee-select option:checked")).to_have_text(
        f"{colleague.email} (you)"
    )
    screenshot(colleague, "assigned")
    docs_screenshot(colleague, "team-inbox-assign.png")

    inbox.get_by_role("button", name="Resolve", exact=True).click()
    expect(inbox.locator("#thread-status")).to_have_text("Resolved")
    expect(colleague.locator("#thread-status")).to_have_text("Resolved")
    expect(colleague.get_by_role("button", name="Reopen", exact=True)).to_be_visible()
    deployment.finished("the colleague sees it resolved, live")

    colleague.get_by_label("Status").select_option("RESOLVED")
    expect(row(colleague, QUESTION).locator(".status-pill")).to_have_text("Resolved")
    screenshot(colleague, "resolved")
    docs_screenshot(colleague, "team-inbox-resolve.png")

    # The customer writes again: the conversation is open again, for both.
    deployment.customer_writes("whatsapp", ACCOUNTS["whatsapp"], FOLLOW_UP, customer=CUSTOMER)
    for page in (inbox, colleague):
        expect(page.locator("#thread-status")).to_have_text("Open")
        expect(page.get_by_role("button", name="Resolve", exact=True)).to_be_visible()
    deployment.finished("the customer's message opened it again on both pages")

    # Found again by a word the customer wrote, from the search box above the list.
    colleague.get_by_label("Search messages and contacts").fill("office addr")
    found = colleague.locator("#search-results a", has_text="office address")
    expect(found).to_be_visible()
    inbox.get_by_label("Search messages and contacts").fill("Kofi")
    expect(inbox.locator("#search-results a", has_text=CUSTOMER[1]).first).to_be_visible()
    screenshot(inbox, "search")
    docs_screenshot(inbox, "team-inbox-search.png")
    assert still_marked(inbox) and still_marked(colleague), "a page reloaded"
