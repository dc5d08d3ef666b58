// The conversation list: newest activity first, filtered by whose it is, status,
// platform, unread and label, paged by cursor, and kept in order as live events move
// conversations up.

import { STATUS_NAMES, handlingTags } from "./assignment.js";
import { labelChips } from "./labels.js";
import { api, el, platformBadge, platformLabel, timeElement } from "./snorq.js";

const PAGE_SIZE = 50;
const UNAVAILABLE = "Could not load conversations. They load again when the connection is back.";

// WhatsApp gives numbers in international form without the "+": 34611222333.
export function phoneNumber(phone) {
  return /^\d+$/.test(phone) ? `+${phone}` : phone;
}

export function contactName(contact) {
  if (!contact) return "Unknown contact";
  return (
    contact.display_name ||
    (contact.username ? `@${contact.username}` : "") ||
    (contact.phone ? phoneNumber(contact.phone) : "") ||
    contact.external_id ||
    "Unknown contact"
  );
}

// The API's order: latest message first, then the higher id.
function isNewer(a, b) {
  const at = a.last_message_at ?? "";
  const bt = b.last_message_at ?? "";
  return at === bt ? a.id > b.id : at > bt;
}

function markActive(row, active) {
  row.classList.toggle("active", active);
  const link = row.querySelector("a");
  if (active) link.setAttribute("aria-current", "true");
  else link.removeAttribute("aria-current");
}

export class ConversationList {
  // `remember(found, asked)` turns a conversation the API answered (asked for at
  // `asked`, a performance.now()) into the page's shared copy of it.
  // `staff` names the assignees and says who "mine" is.
  constructor(remember, staff) {
    this.remember = remember;
    this.staff = staff;
    this.node = document.getElementById("conversations");
    this.note = document.getElementById("list-empty");
    this.more = document.getElementById("load-more");
    this.filters = { view: "all", status: "OPEN", platform: "", unread: false, label: "" };
    this.shown = new Map(); // conversation id -> { conversation, row }, in list order
    this.nextCursor = null;
    this.activeId = null;
    this.request = 0;
    this.failed = false; // the last load found the API unreachable
    this.shownFilters = null; // the filters the rows shown were loaded under
  }

  ids() {
    return [...this.shown.keys()];
  }

  matches(conversation) {
    const { view, status, platform, unread, label } = this.filters;
    const assignee = conversation.assignee_id ?? null;
    return (
      (view !== "mine" || assignee === this.staff.me) &&
      (view !== "unassigned" || assignee === null) &&
      (!status || (conversation.status ?? "OPEN") === status) &&
      (!platform || conversation.platform === platform) &&
      (!unread || conversation.unread_count > 0) &&
      (!label || (conversation.labels ?? []).some((on) => String(on.id) === label))
    );
  }

  // The first page (or, with `more`, the next one) under the current filters.
  async load({ more = false } = {}) {
    const request = ++this.request;
    const params = new URLSearchParams({ limit: PAGE_SIZE });
    if (this.filters.view !== "all") params.set("assignee", this.filters.view === "mine" ? "me" : "none");
    if (this.filters.status) params.set("status", this.filters.status);
    if (this.filters.platform) params.set("platform", this.filters.platform);
    if (this.filters.unread) params.set("unread", "1");
    if (this.filters.label) params.set("label", this.filters.label);
    if (more && this.nextCursor) params.set("cursor", this.nextCursor);
    const asked = performance.now();
    let data;
    try {
      data = await api(`/api/v1/conversations?${params}`);
    } catch {
      if (request !== this.request) return;
      this.failed = true;
      // Rows of other filters would pass for the answer to these.
      if (this.shownFilters !== JSON.stringify(this.filters)) this.clear();
      this.showNote(UNAVAILABLE);
      return;
    }
    if (request !== this.request) return;
    this.failed = false;
    this.shownFilters = JSON.stringify(this.filters);
    if (!more) this.clear();
    this.nextCursor = data.next_cursor;
    for (const found of data.conversations) {
      if (this.shown.has(found.id)) continue;
      const conversation = this.remember(found, asked);
      const row = this.render(conversation);
      this.node.append(row);
      this.shown.set(conversation.id, { conversation, row });
    }
    this.showNote(this.emptyNote());
  }

  // Put a conversation's row where the order says, or take it out when it no
  // longer matches the filters.
  show(conversation) {
    const old = this.shown.get(conversation.id);
    const hadFocus = old?.row.contains(document.activeElement);
    old?.row.remove();
    this.shown.delete(conversation.id);
    // The open conversation keeps its row even once it stops matching (say, read
    // under "Unread only"), so the list does not jump under the reader.
    const keep = old && conversation.id === this.activeId;
    if (this.matches(conversation) || keep) {
      const next = [...this.shown.values()].find((entry) => isNewer(conversation, entry.conversation));
      // Older than every loaded row while more pages exist: it belongs to a later page.
      if (next || !this.nextCursor || old) {
        const row = this.render(conversation);
        this.node.insertBefore(row, next?.row ?? null);
        this.shown.set(conversation.id, { conversation, row });
        this.reorder();
        if (hadFocus) row.querySelector("a").focus();
      }
    }
    this.showNote(this.emptyNote());
  }

  clear() {
    this.node.replaceChildren();
    this.shown.clear();
    this.nextCursor = null;
  }

  setActive(id) {
    this.activeId = id;
    for (const [rowId, { row }] of this.shown) markActive(row, rowId === id);
  }

  // What an empty list says, under the current filters.
  emptyNote() {
    const { view, status, platform, unread, label } = this.filters;
    const which = [
      unread ? "unread" : "",
      status ? STATUS_NAMES[status].toLowerCase() : "",
      view === "unassigned" ? "unassigned" : "",
      platform ? platformLabel(platform) : "",
    ];
    const kind = which.filter(Boolean).join(" ");
    const whose = view === "mine" ? " assigned to you" : "";
    const onlyOpen = status === "OPEN" && kind === "open" && !label && !whose;
    if (onlyOpen) return "No open conversations. What customers write arrives here as it happens.";
    if (kind || label || whose) {
      return `No ${kind ? `${kind} ` : ""}conversations${whose}${label ? " with this label" : ""}.`;
    }
    return "No conversations yet. What customers write arrives here as it happens.";
  }

  showNote(text) {
    this.more.hidden = !this.nextCursor;
    this.note.textContent = text;
    this.note.hidden = text !== UNAVAILABLE && this.shown.size > 0;
  }

  // Keep `shown` in the list's order, so "next" and "previous" follow the screen.
  reorder() {
    const byRow = new Map([...this.shown.values()].map((entry) => [entry.row, entry]));
    this.shown = new Map(
      [...this.node.children].map((row) => [byRow.get(row).conversation.id, byRow.get(row)]),
    );
  }

  render(conversation) {
    const unread = conversation.unread_count;
    const row = el(
      "li",
      { class: `conversation${unread ? " unread" : ""}` },
      el(
        "a",
        { href: `?c=${conversation.id}`, dataset: { id: conversation.id } },
        platformBadge(conversation.platform),
        el(
          "span",
          { class: "conversation-body" },
          el(
            "span",
            { class: "conversation-top" },
            el("span", { class: "name", text: contactName(conversation.contact) }),
            timeElement(conversation.last_message_at),
          ),
          el(
            "span",
            { class: "conversation-bottom" },
            el("span", { class: "preview", text: conversation.last_message_preview || "\u00a0" }),
            unread
              ? el("span", {
                  class: "count",
                  title: `${unread} unread`,
                  text: unread > 99 ? "99+" : String(unread),
                })
              : null,
          ),
          labelChips(conversation.labels),
          handlingTags(conversation, this.staff),
        ),
      ),
    );
    markActive(row, conversation.id === this.activeId);
    return row;
  }
}
