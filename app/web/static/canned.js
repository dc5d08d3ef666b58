// Canned responses: typing "/" and a shortcut in a text box offers the team's saved
// answers; Tab, Enter or a click puts one in place of the "/shortcut".

import { api, el } from "./snorq.js";

// A "/word" that ends at the caret, at the start of the text or after a space.
const TYPED = /(^|\s)\/([a-z0-9_-]*)$/;
const SHOWN = 6;

export class CannedResponses {
  constructor() {
    this.all = [];
  }

  async load() {
    const data = await api("/api/v1/canned-responses");
    this.all = data.canned_responses;
  }

  matching(prefix) {
    return this.all.filter((canned) => canned.shortcut.startsWith(prefix)).slice(0, SHOWN);
  }
}

// The suggestions under one text box. Its keys are handled on the way down to the
// box (capture), so Enter inserts a suggestion instead of sending the text.
export class Suggestions {
  constructor(canned, textarea, list) {
    this.canned = canned;
    this.textarea = textarea;
    this.list = list;
    this.found = [];
    this.chosen = 0;
    textarea.addEventListener("input", () => this.update());
    textarea.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    textarea.parentElement.addEventListener("keydown", (event) => this.onKey(event), true);
    list.addEventListener("mousedown", (event) => {
      const item = event.target.closest("[data-index]");
      if (!item) return;
      event.preventDefault();
      this.insert(this.found[Number(item.dataset.index)]);
    });
  }

  typed() {
    const before = this.textarea.value.slice(0, this.textarea.selectionStart);
    return TYPED.exec(before);
  }

  update() {
    const typed = this.typed();
    this.found = typed ? this.canned.matching(typed[2]) : [];
    this.chosen = 0;
    this.render();
  }

  render() {
    this.list.hidden = this.found.length === 0;
    this.list.replaceChildren(
      ...this.found.map((canned, index) =>
        el(
          "li",
          {
            class: `suggestion${index === this.chosen ? " chosen" : ""}`,
            role: "option",
            "aria-selected": String(index === this.chosen),
            dataset: { index },
          },
          el("span", { class: "shortcut", text: `/${canned.shortcut}` }),
          el("span", { class: "muted", text: canned.content }),
        ),
      ),
    );
  }

  close() {
    this.found = [];
    this.render();
  }

  onKey(event) {
    if (event.target !== this.textarea || !this.found.length) return;
    const keys = {
      ArrowDown: () => this.move(1),
      ArrowUp: () => this.move(-1),
      Tab: () => this.insert(this.found[this.chosen]),
      Enter: () => this.insert(this.found[this.chosen]),
      Escape: () => this.close(),
    };
    const act = keys[event.key];
    if (!act || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    event.stopPropagation();
    act();
  }

  move(step) {
    this.chosen = (this.chosen + step + this.found.length) % this.found.length;
    this.render();
  }

  // Put the canned text in place of the "/shortcut" before the caret.
  insert(canned) {
    const typed = this.typed();
    const box = this.textarea;
    const end = box.selectionStart;
    const start = typed ? end - typed[2].length - 1 : end;
    box.setRangeText(canned.content, start, end, "end");
    box.dispatchEvent(new Event("input", { bubbles: true }));
    this.close();
    box.focus();
  }
}
