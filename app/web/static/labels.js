// Labels: the organization's coloured tags as chips (list rows, thread header), the
// picker that puts them on the open conversation, and the list's label filter.
// The organization's labels are loaded once and then follow the live events.

import { api, el } from "./snorq.js";

const $ = (id) => document.getElementById(id);
const COLOR = /^#[0-9a-f]{6}$/i;

// Dark text on a light colour, white on a dark one.
function inkFor(color) {
  const [r, g, b] = [1, 3, 5].map((at) => parseInt(color.slice(at, at + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#1d2329" : "#ffffff";
}

export function labelChip(label) {
  const node = el("span", { class: "label-chip", text: label.name, title: label.name });
  // Through the CSSOM: the pages' Content-Security-Policy allows no style attribute.
  if (COLOR.test(label.color)) {
    node.style.setProperty("--label-color", label.color);
    node.style.setProperty("--label-ink", inkFor(label.color));
  }
  return node;
}

export function labelChips(labels) {
  if (!labels?.length) return null;
  return el("span", { class: "label-chips" }, labels.map(labelChip));
}

function byName(a, b) {
  return a.name.localeCompare(b.name, undefined, { sensitivity: "base" }) || a.id - b.id;
}

// The organization's labels; `onChange()` runs whenever they change.
export class Labels {
  constructor(onChange) {
    this.all = new Map();
    this.onChange = onChange;
  }

  async load() {
    const data = await api("/api/v1/labels");
    this.all = new Map(data.labels.map((label) => [label.id, label]));
    this.onChange();
  }

  sorted() {
    return [...this.all.values()].sort(byName);
  }

  put(label) {
    this.all.set(label.id, label);
    this.onChange();
  }

  remove(id) {
    this.all.delete(id);
    this.onChange();
  }

  // A conversation's labels as the organization has them now (renamed, recoloured, deleted).
  current(labels) {
    return (labels ?? [])
      .filter((label) => this.all.size === 0 || this.all.has(label.id))
      .map((label) => this.all.get(label.id) ?? label)
      .sort(byName);
  }
}

// The label filter above the list: its options follow the organization's labels.
export function fillLabelFilter(labels, selected) {
  const options = labels.sorted().map((label) =>
    el("option", { value: label.id, text: label.name, selected: String(label.id) === selected }),
  );
  $("filter-label").replaceChildren(el("option", { value: "", text: "All labels" }), ...options);
  $("filter-label").value = selected;
}

// The thread header's chips and the picker that changes them. `onSaved(conversation)`
// gets the conversation as the API answered.
export class LabelPicker {
  constructor(labels, onSaved) {
    this.labels = labels;
    this.onSaved = onSaved;
    this.conversation = null;
    $("labels-button").addEventListener("click", () => this.toggle());
    $("labels-menu").addEventListener("change", (event) => {
      if (event.target.matches("input[type=checkbox]")) this.save();
    });
    document.addEventListener("click", (event) => {
      if (!event.target.closest("#thread-labels-box")) $("labels-menu").hidden = true;
    });
  }

  show(conversation) {
    if (this.conversation?.id !== conversation.id) $("labels-menu").hidden = true;
    this.conversation = conversation;
    $("thread-labels").replaceChildren(labelChips(this.labels.current(conversation.labels)) ?? "");
    if (!$("labels-menu").hidden) this.renderMenu();
  }

  toggle() {
    $("labels-menu").hidden = !$("labels-menu").hidden;
    if (!$("labels-menu").hidden) this.renderMenu();
  }

  renderMenu() {
    const on = new Set((this.conversation.labels ?? []).map((label) => label.id));
    const choices = this.labels.sorted().map((label) =>
      el(
        "label",
        { class: "label-choice" },
        el("input", { type: "checkbox", value: label.id, checked: on.has(label.id) }),
        labelChip(label),
      ),
    );
    if (!choices.length) {
      choices.push(el("p", { class: "muted", text: "No labels yet. An admin adds them under Labels & replies." }));
    }
    $("labels-menu").replaceChildren(...choices, el("p", { class: "form-error", id: "labels-error", hidden: true }));
  }

  async save() {
    const conversation = this.conversation;
    const ids = [...$("labels-menu").querySelectorAll("input:checked")].map((box) => Number(box.value));
    try {
      const data = await api(`/api/v1/conversations/${conversation.id}/labels`, {
        method: "PUT",
        body: { label_ids: ids },
      });
      this.onSaved(data.conversation);
    } catch (error) {
      const note = $("labels-error");
      if (note) {
        note.hidden = false;
        note.textContent = `Not saved: ${error.message}`;
      }
    }
  }
}
