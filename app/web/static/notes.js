// Private notes: staff-only cards in the thread, and the composer's "Private note"
// mode that writes them. A note goes to SNORQ's notes API only: it is never a reply.

import { api, clockTime, el, timeElement } from "./snorq.js";

const $ = (id) => document.getElementById(id);

export async function fetchNotes(conversationId) {
  const data = await api(`/api/v1/conversations/${conversationId}/notes`);
  return data.notes;
}

export function renderNote(note) {
  const author = note.author ? note.author.email : "A former staff member";
  return el(
    "div",
    { class: "msg note", dataset: { note: note.id } },
    el(
      "div",
      { class: "note-card" },
      el(
        "span",
        { class: "note-head" },
        el("span", { class: "note-tag", text: "Private note" }),
        el("span", { class: "note-author", text: author }),
        timeElement(note.created_at, clockTime),
      ),
      el("p", { class: "text", text: note.content }),
    ),
  );
}

// The composer's two modes: "Reply" (the reply box, as ever) and "Private note".
// `onAdded(note)` gets each note the API stored.
export class NoteMode {
  constructor(onAdded) {
    this.onAdded = onAdded;
    this.conversation = null;
    this.drafts = new Map();
    this.saving = false;
    $("mode-reply").addEventListener("click", () => this.switchTo(false));
    $("mode-note").addEventListener("click", () => this.switchTo(true));
    $("note-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    $("note-text").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.save();
      }
    });
  }

  show(conversation) {
    if (this.conversation?.id !== conversation.id) {
      if (this.conversation) this.drafts.set(this.conversation.id, $("note-text").value);
      $("note-text").value = this.drafts.get(conversation.id) ?? "";
      $("note-error").hidden = true;
    }
    this.conversation = conversation;
  }

  switchTo(note) {
    $("composer").classList.toggle("noting", note);
    $("reply-part").hidden = note;
    $("note-form").hidden = !note;
    $("mode-reply").setAttribute("aria-selected", String(!note));
    $("mode-note").setAttribute("aria-selected", String(note));
    (note ? $("note-text") : $("reply-text")).focus();
  }

  async save() {
    const conversation = this.conversation;
    const content = $("note-text").value;
    if (this.saving || !content.trim()) return;
    this.saving = true;
    try {
      const data = await api(`/api/v1/conversations/${conversation.id}/notes`, {
        method: "POST",
        body: { content },
      });
      $("note-error").hidden = true;
      this.drafts.delete(conversation.id);
      if (this.conversation === conversation) $("note-text").value = "";
      this.onAdded(data.note);
    } catch (error) {
      $("note-error").hidden = false;
      $("note-error").textContent = `Note not saved: ${error.message}`;
    } finally {
      this.saving = false;
    }
  }
}
