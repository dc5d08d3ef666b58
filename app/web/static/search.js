// Search: typing in the box above the list shows the conversations whose contact
// matches and the messages that have every word typed; a click opens the conversation.

import { contactName } from "./conversation_list.js";
import { api, el, platformBadge, timeElement } from "./snorq.js";

// Quiet time after the last keystroke before the API is asked.
const WAIT_MS = 250;

export class Search {
  // `open(id)` opens conversation `id` in the thread pane.
  constructor(open) {
    this.open = open;
    this.input = document.getElementById("search-text");
    this.results = document.getElementById("search-results");
    this.timer = null;
    this.request = 0;
    this.input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.run(), WAIT_MS);
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      this.input.value = "";
      this.run();
    });
    document.getElementById("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(this.timer);
      this.run();
    });
    this.results.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-id]");
      if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
      event.preventDefault();
      this.open(Number(link.dataset.id));
    });
  }

  async run() {
    const request = ++this.request;
    const text = this.input.value.trim();
    if (!text) {
      this.show([]);
      return;
    }
    let data;
    try {
      data = await api(`/api/v1/search?${new URLSearchParams({ q: text })}`);
    } catch (error) {
      if (request !== this.request) return;
      const note = error.status === 400 ? error.message : "Could not search right now.";
      this.show([el("p", { class: "empty", text: note })]);
      return;
    }
    if (request !== this.request) return;
    const conversations = data.conversations.map((c) => result(c.id, c.platform, c.contact, null));
    const messages = data.messages.map((m) => result(m.conversation_id, m.platform, m.contact, m));
    this.show([
      ...section("Conversations", conversations),
      ...section("Messages", messages),
      conversations.length || messages.length
        ? null
        : el("p", { class: "empty", text: "Nothing matches every word." }),
    ]);
  }

  show(children) {
    this.results.replaceChildren(...children.filter(Boolean));
    this.results.hidden = children.length === 0;
  }
}

function section(title, rows) {
  if (!rows.length) return [];
  return [el("h3", { text: title }), el("ul", { class: "search-list" }, rows)];
}

// One row: the contact, and for a message its time and text.
function result(conversationId, platform, contact, message) {
  return el(
    "li",
    {},
    el(
      "a",
      { href: `?c=${conversationId}`, dataset: { id: conversationId } },
      platformBadge(platform),
      el(
        "span",
        { class: "conversation-body" },
        el(
          "span",
          { class: "conversation-top" },
          el("span", { class: "name", text: contactName(contact) }),
          message ? timeElement(message.created_at) : null,
        ),
        message ? el("span", { class: "preview", text: message.content }) : null,
      ),
    ),
  );
}
