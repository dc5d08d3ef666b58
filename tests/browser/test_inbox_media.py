"""The inbox shows what customers send besides text: pictures, voice messages, documents.

A WhatsApp customer sends a picture, a voice message and a PDF while the staff
member has their conversation open. Without a reload, the picture shows inline,
the voice message gets a player that can load it, and the PDF is a download
that saves the very file the customer sent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.simulator.media import sample_audio, sample_document
from tests.e2e.deployment import ACCOUNTS, Deployment

pytestmark = pytest.mark.browser

#: A customer of its own, so the conversation holds only these messages.
CUSTOMER = ("34611222333", "Farah Okafor")
GREETING = "Hola, I ordered the linen jacket last week and have a question."
CAPTION = "This stain was on it when it arrived."
RECEIPT = "Here is my receipt."
#: How long the simulator's voice message lasts, in seconds.
VOICE_SECONDS = 2

#: The element's media duration once it has loaded the file's metadata (or why it could not).
LOAD_AUDIO = """(audio) => new Promise((done) => {
  audio.addEventListener("loadedmetadata", () => done(audio.duration), { once: true });
  audio.addEventListener("error", () => done(`error ${audio.error?.code}`), { once: true });
  audio.preload = "metadata";
  audio.load();
})"""


def sends(deployment: Deployment, text: str = "", **media: bool) -> None:
    deployment.customer_writes("whatsapp", ACCOUNTS["whatsapp"], text, customer=CUSTOMER, **media)


def test_a_picture_shows_inline_a_voice_message_plays_and_a_document_downloads(
    deployment: Deployment, inbox: Page, screenshot
):
    deployment.forbid(GREETING, CAPTION, RECEIPT)
    sends(deployment, GREETING)
    inbox.locator("#conversations li", has_text=GREETING).get_by_role("link").click()
    thread = inbox.locator("#message-list")
    expect(thread.locator(".msg.in", has_text=GREETING)).to_be_visible()
    inbox.evaluate("() => { window.notReloaded = true; }")

    sends(deployment, CAPTION, image=True)
    sends(deployment, audio=True)
    sends(deployment, RECEIPT, document=True)

    picture = thread.locator(".msg.in", has_text=CAPTION).locator("img.image")
    expect(picture).to_be_visible()
    inbox.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle()
    )
    expect(picture.locator("xpath=..")).to_have_attribute(
        "href", re.compile(r"^/api/v1/attachments/")
    )
    deployment.finished("the picture shows inline")

    player = thread.locator(".msg.in audio.attachment")
    expect(player).to_have_attribute("controls", "")
    # The player says what it is: no "[Audio]" under it.
    expect(thread.locator(".msg.in", has=player).locator(".text")).to_have_count(0)
    duration = player.evaluate(LOAD_AUDIO)
    assert duration == pytest.approx(VOICE_SECONDS, abs=0.1), duration
    assert inbox.request.get(player.get_attribute("src")).body() == sample_audio()
    deployment.finished("the voice message's player loads it")

    document = thread.locator(".msg.in", has_text=RECEIPT).locator("a.attachment.document")
    expect(document).to_contain_text("receipt-1042.pdf")
    with inbox.expect_download() as downloading:
        document.click()
    download = downloading.value
    assert download.suggested_filename == "receipt-1042.pdf"
    assert Path(download.path()).read_bytes() == sample_document()
    deployment.finished("the document downloads")

    attach = inbox.get_by_role("button", name="Attach a file")
    expect(attach.locator("svg")).to_be_visible()
    screenshot(inbox, "media")
    assert inbox.evaluate("() => window.notReloaded === true"), "the page reloaded"
