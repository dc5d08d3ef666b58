// The open conversation: its header and its messages, oldest first under day
// headings, updated in place as live events arrive.

import { api, dayLabel, el, parseTime, platformBadge, platformLabel } from "./snorq.js";
import { contactName, phoneNumber } from "./conversation_list.js";
import { renderMessage, sentAt } from "./message_view.js";
import { renderNote } from "./notes.js";

const $ = (id) => document.getElementById(id);

const PAGE_SIZE = 50;
// Outbound statuses only move forward (FAILED is outside the order: a retry leaves it).
const STATUS_ORDER = { PENDING: 0, SENT: 1, DELIVERED: 2, READ: 3 };
const PANES = ["thread-header", "messages", "composer"];

// Oldest first, by when each was sent (webhooks need not arrive in order); messages
// of the same moment (WhatsApp counts whole seconds) in the order SNORQ got them.
function inOrder(a, b) {
  return parseTime(sentAt(a)) - parseTime(sentAt(b)) || a.id - b.id;
}

export class Thread {
  constructor() {
    this.box = $("messages");
    this.list = $("message-list");
    this.start(null);
    $("load-earlier").addEventListener("click", () => this.loadEarlier().catch(() => {}));
  }

  // Switch to conversation `id`; it shows once `show` has its messages.
  start(id) {
    this.id = id;
    this.conversation = null;
    this.messages = new Map();
    this.notes = new Map(); // private notes, by id (notes.js)
    // Attachments settled by live events (final: AVAILABLE or FAILED), by id.
    this.settled = new Map();
    this.hasEarlier = false;
  }

  async fetchLatest(id) {
    const page = await api(`/api/v1/conversations/${id}/messages?limit=${PAGE_SIZE}`);
    return page.messages;
  }

  show(conversation, messages, connection) {
    this.conversation = conversation;
    for (const message of messages) this.store(message);
    this.hasEarlier = messages.length === PAGE_SIZE;
    $("thread-empty").hidden = true;
    for (const id of PANES) $(id).hidden = false;
    this.update(connection);
    this.render();
    this.scrollToEnd();
  }

  close(reason) {
    this.start(null);
    for (const id of PANES) $(id).hidden = true;
    $("thread-empty").hidden = false;
    $("thread-empty").textContent = reason;
  }

  // Show the header again (new contact details, or the connection's name).
  update(connection) {
    const conversation = this.conversation;
    const contact = conversation.contact ?? {};
    const name = contactName(contact);
    const details = [platformLabel(conversation.platform)];
    if (connection) details.push(connection.name || connection.account_id);
    const phone = contact.phone ? phoneNumber(contact.phone) : null;
    if (phone && name !== phone) details.push(phone);
    if (contact.username && name !== `@${contact.username}`) details.push(`@${contact.username}`);
    $("thread-badge").replaceChildren(platformBadge(conversation.platform));
    $("thread-avatar").hidden = !contact.avatar_url;
    if (contact.avatar_url) $("thread-avatar").src = contact.avatar_url;
    $("thread-name").textContent = name;
    $("thread-sub").textContent = details.join(" · ");
  }

  // Keep the more advanced of two copies of a message (events and pages overlap),
  // with the files either copy knows: status events may carry a message without
  // its files. Whether anything changed.
  store(message) {
    const known = this.messages.get(message.id);
    const before = STATUS_ORDER[known?.status];
    const after = STATUS_ORDER[message.status];
    const newer = before === undefined || after === undefined || after >= before;
    const [kept, other] = newer ? [message, known] : [known, message];
    const files = kept.attachments?.length ? kept.attachments : (other?.attachments ?? []);
    const others = new Map((other?.attachments ?? []).map((file) => [file.id, file]));
    // A file's state only moves on from PENDING (to AVAILABLE or FAILED).
    const attachments = files.map((file) => {
      const settled = this.settled.get(file.id) ?? others.get(file.id);
      return file.status === "PENDING" && settled ? settled : file;
    });
    const changed = newer || attachments.some((file, i) => file !== kept.attachments?.[i]);
    if (!changed) return false;
    this.messages.set(message.id, { ...kept, attachments });
    return true;
  }

  sorted() {
    return [...this.messages.values()].sort(inOrder);
  }

  // The staff's notes, shown among the messages by time.
  setNotes(notes) {
    for (const note of notes) this.notes.set(note.id, note);
  }

  addNote(note) {
    if (this.notes.has(note.id)) return;
    this.notes.set(note.id, note);
    if (!this.conversation) return;
    const follow = this.nearEnd();
    this.render();
    if (follow) this.scrollToEnd();
  }

  noteAfter(message) {
    const at = parseTime(sentAt(message));
    return [...this.notes.values()].some((note) => parseTime(note.created_at) > at);
  }

  // Messages and notes in time order; while earlier messages are not loaded, the
  // notes from before them wait with them.
  entries() {
    const oldest = this.hasEarlier ? this.sorted()[0] : null;
    const from = oldest ? parseTime(sentAt(oldest)) : -Infinity;
    const notes = [...this.notes.values()]
      .filter((note) => parseTime(note.created_at) >= from)
      .map((note) => ({ at: parseTime(note.created_at), node: () => renderNote(note) }));
    const platform = this.conversation.platform;
    const messages = this.sorted().map((message) => ({
      at: parseTime(sentAt(message)),
      node: () => renderMessage(message, platform),
    }));
    return [...messages, ...notes].sort((a, b) => a.at - b.at);
  }

  // The first message SNORQ stored of those loaded: pages reach back from it.
  oldestId() {
    return Math.min(...this.messages.keys());
  }

  render() {
    const nodes = [];
    let day = null;
    for (const entry of this.entries()) {
      const label = dayLabel(entry.at);
      if (label !== day) nodes.push(el("div", { class: "day", text: (day = label) }));
      nodes.push(entry.node());
    }
    if (!nodes.length) nodes.push(el("p", { class: "empty", text: "No messages yet." }));
    this.list.replaceChildren(...nodes);
    $("load-earlier").hidden = !this.hasEarlier;
  }

  // A new message, or a new state of one already shown.
  add(update) {
    const shown = this.messages.has(update.id);
    const last = this.sorted().at(-1);
    // A receipt reaching back before the loaded messages: "Load earlier" brings it.
    if (!shown && this.conversation && this.hasEarlier && update.id < this.oldestId()) return;
    if (!this.store(update) || !this.conversation) return;
    const message = this.messages.get(update.id);
    const node = this.list.querySelector(`[data-id="${message.id}"]`);
    if (shown && node) {
      node.replaceWith(renderMessage(message, this.conversation.platform));
      return;
    }
    const follow = this.nearEnd() || message.direction === "OUTBOUND";
    if (last && inOrder(message, last) > 0 && !this.noteAfter(message)) {
      const label = dayLabel(parseTime(sentAt(message)));
      if (dayLabel(parseTime(sentAt(last))) !== label) {
        this.list.append(el("div", { class: "day", text: label }));
      }
      this.list.append(renderMessage(message, this.conversation.platform));
    } else {
      this.render();
    }
    if (follow) this.scrollToEnd();
  }

  // A file of a message here arrived (or never will): show it in place, without a reload.
  updateAttachment(messageId, attachment) {
    this.settled.set(attachment.id, attachment);
    const message = this.messages.get(messageId);
    if (!message || !this.conversation) return;
    this.store(message);
    this.list
      .querySelector(`[data-id="${messageId}"]`)
      ?.replaceWith(renderMessage(this.messages.get(messageId), this.conversation.platform));
  }

  remove(id) {
    this.messages.delete(id);
    this.list.querySelector(`[data-id="${id}"]`)?.remove();
  }

  async loadEarlier() {
    const id = this.id;
    const query = new URLSearchParams({ before: this.oldestId(), limit: PAGE_SIZE });
    const page = await api(`/api/v1/conversations/${id}/messages?${query}`);
    if (this.id !== id) return;
    for (const message of page.messages) this.store(message);
    this.hasEarlier = page.messages.length === PAGE_SIZE;
    const fromEnd = this.box.scrollHeight - this.box.scrollTop;
    this.render();
    this.box.scrollTop = this.box.scrollHeight - fromEnd;
  }

  nearEnd() {
    return this.box.scrollHeight - this.box.scrollTop - this.box.clientHeight < 80;
  }

  scrollToEnd() {
    this.box.scrollTop = this.box.scrollHeight;
  }
}
