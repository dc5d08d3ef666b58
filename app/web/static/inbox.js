// The inbox page: the conversation list, the open thread and the reply box, kept
// current by the organization's live events. Every piece of data comes from the
// JSON API; the page keeps one shared copy of each conversation it has seen.

import { api, el, platformBadge, platformLabel, refreshTimes, showLiveState } from "./snorq.js";
import { Handling, Staff, wireAvailability } from "./assignment.js";
import { CannedResponses, Suggestions } from "./canned.js";
import { Composer } from "./composer.js";
import { ConversationList } from "./conversation_list.js";
import { LabelPicker, Labels, fillLabelFilter } from "./labels.js";
import { followLive } from "./live.js";
import { Manage } from "./manage.js";
import { NoteMode, fetchNotes } from "./notes.js";
import { Presence } from "./presence.js";
import { Search } from "./search.js";
import { Thread } from "./thread.js";

const $ = (id) => document.getElementById(id);

const known = new Map();
const fetching = new Map(); // conversation id -> { request, asked }
// When each conversation was last read here or by another page (performance.now()).
const readAt = new Map();
let connections = new Map();

const admin = $("inbox").dataset.admin === "yes";
const staff = new Staff(Number($("inbox").dataset.me), () => {
  for (const id of list.ids()) list.show(known.get(id));
  handling.renderAssignees();
});
const list = new ConversationList(remember, staff);
const handling = new Handling(staff, (conversation) => refreshOpen(remember(conversation)));
const thread = new Thread();
const composer = new Composer((message) => {
  presence.sent();
  if (thread.id === message.conversation_id) thread.add(message);
});
let live = null;
const presence = new Presence((message) => live?.send(message));
const baseTitle = document.title;
const labels = new Labels(() => fillLabelFilter(labels, list.filters.label));
const picker = new LabelPicker(labels, (conversation) => refreshOpen(remember(conversation)));
const noteMode = new NoteMode((note) => {
  if (thread.id === note.conversation_id) thread.addNote(note);
});
const canned = new CannedResponses();
new Suggestions(canned, $("reply-text"), $("reply-suggestions"));
new Suggestions(canned, $("note-text"), $("note-suggestions"));
new Manage(labels, canned, admin);
new Search((id) => openConversation(id));

// Merge what the API or an event says about a conversation into the shared copy.
// `asked` is when the API was asked (performance.now()); an answer asked for before
// the conversation was last read may predate the read, so its unread count is stale.
function remember(conversation, asked = Infinity) {
  const copy = known.get(conversation.id);
  const stale = asked <= (readAt.get(conversation.id) ?? -Infinity);
  if (!copy) {
    if (stale) conversation.unread_count = 0;
    known.set(conversation.id, conversation);
    return conversation;
  }
  const fresh = { ...conversation, contact: { ...copy.contact, ...conversation.contact } };
  if (stale) fresh.unread_count = copy.unread_count;
  return Object.assign(copy, fresh);
}

// The whole conversation from the API, asked for no earlier than `after`
// (performance.now()); one request per conversation at a time.
function fetchConversation(id, after = -Infinity) {
  const pending = fetching.get(id);
  if (pending && pending.asked >= after) return pending.request;
  const asked = performance.now();
  const request = api(`/api/v1/conversations/${id}`)
    .then((data) => remember(data.conversation, asked))
    .finally(() => {
      if (fetching.get(id)?.request === request) fetching.delete(id);
    });
  fetching.set(id, { request, asked });
  return request;
}

// The conversation was read (here, or on another page): `unreadCount` is left.
function noteRead(id, unreadCount) {
  readAt.set(id, performance.now());
  const conversation = known.get(id);
  if (!conversation) return;
  conversation.unread_count = unreadCount;
  list.show(conversation);
}

async function openConversation(id) {
  thread.start(id);
  presence.show(id);
  list.setActive(id);
  saveLocation();
  let conversation, messages, notes;
  try {
    [conversation, messages, notes] = await Promise.all([
      fetchConversation(id),
      thread.fetchLatest(id),
      fetchNotes(id),
    ]);
  } catch (error) {
    if (thread.id !== id) return;
    thread.close(error.status === 404 ? "This conversation does not exist." : "Could not load it.");
    presence.show(null);
    saveLocation();
    return;
  }
  if (thread.id !== id) return;
  thread.setNotes(notes);
  thread.show(conversation, messages, connections.get(conversation.connection_id));
  composer.show(conversation);
  noteMode.show(conversation);
  picker.show(conversation);
  handling.show(conversation);
  markReadIfSeen();
}

// Mark the open conversation read if the staff member can see it; settles once the
// server has recorded it (or failed to).
function markReadIfSeen() {
  const conversation = thread.conversation;
  if (!conversation?.unread_count || document.visibilityState !== "visible") {
    return Promise.resolve();
  }
  noteRead(conversation.id, 0);
  const path = `/api/v1/conversations/${conversation.id}/read`;
  return api(path, { method: "POST" }).catch(() => {});
}

async function retry(button) {
  button.disabled = true;
  try {
    const data = await api(`/api/v1/messages/${button.dataset.retry}/retry`, { method: "POST" });
    if (thread.id === data.message.conversation_id) thread.add(data.message);
  } catch (error) {
    button.disabled = false;
    composer.showError(error);
  }
}

function saveLocation() {
  const params = new URLSearchParams();
  if (list.filters.view !== "all") params.set("view", list.filters.view);
  if (list.filters.status !== "OPEN") params.set("status", list.filters.status || "any");
  if (list.filters.platform) params.set("platform", list.filters.platform);
  if (list.filters.unread) params.set("unread", "1");
  if (list.filters.label) params.set("label", list.filters.label);
  if (thread.id) params.set("c", thread.id);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

// -- connections that need a person ------------------------------------------

async function loadConnections() {
  const data = await api("/api/v1/connections");
  connections = new Map(data.connections.map((connection) => [connection.id, connection]));
  renderBanners();
  if (thread.conversation) thread.update(connections.get(thread.conversation.connection_id));
}

function renderBanners() {
  const banners = [...connections.values()]
    .filter((connection) => connection.status === "NEEDS_REAUTH")
    .map((connection) => {
      const name = connection.name || connection.account_id;
      const reason = connection.status_reason ? `: ${connection.status_reason}` : ".";
      return el(
        "div",
        { class: "banner", role: "alert" },
        platformBadge(connection.platform),
        el("span", {
          text: `${platformLabel(connection.platform)} · ${name} needs to be reconnected${reason}`,
        }),
        el("a", {
          class: "button",
          href: `/api/v1/platforms/connect/${encodeURIComponent(connection.platform)}`,
          text: "Reconnect",
        }),
      );
    });
  $("banners").replaceChildren(...banners);
}

// -- live events -------------------------------------------------------------

function refreshOpen(conversation) {
  list.show(conversation);
  if (thread.conversation?.id !== conversation.id) return;
  thread.update(connections.get(conversation.connection_id));
  composer.show(conversation);
  picker.show(conversation);
  handling.show(conversation);
}

// Someone assigned the conversation or changed its status: show it, or fetch it if it
// is new here (it may now belong in this list: assigned to me, opened again).
function handled({ conversation_id: id, status, snoozed_until, status_changed_at, assignee_id }) {
  const fields = { status, snoozed_until, status_changed_at, assignee_id };
  const conversation = known.get(id);
  if (conversation) refreshOpen(Object.assign(conversation, fields));
  else fetchConversation(id, performance.now()).then((found) => list.show(found), () => {});
}

// A label was renamed, recoloured or deleted: every conversation here shows it so.
function relabelAll() {
  for (const conversation of known.values()) {
    if (!conversation.labels?.length) continue;
    conversation.labels = labels.current(conversation.labels);
    refreshOpen(conversation);
  }
}

const handlers = {
  "new:message": ({ message, conversation }) => {
    if (known.has(conversation.id)) {
      list.show(remember(conversation));
    } else {
      // New here: a request already on its way may be answered as of before this message.
      const found = fetchConversation(conversation.id, performance.now());
      found.then((fetched) => list.show(fetched), () => {});
    }
    if (message.direction === "INBOUND" && document.visibilityState !== "visible") {
      document.title = `● ${baseTitle}`;
    }
    if (thread.id !== message.conversation_id) return;
    thread.add(message);
    if (message.direction === "INBOUND") {
      // A customer's message opens the messaging window again: read the window once
      // the read is recorded, so the answer cannot bring the unread count back.
      markReadIfSeen()
        .then(() => fetchConversation(message.conversation_id, performance.now()))
        .then(refreshOpen, () => {});
    }
  },
  "message:sent": ({ message }) => {
    if (thread.id === message.conversation_id) thread.add(message);
  },
  "message:status": ({ message }) => {
    if (thread.id === message.conversation_id) thread.add(message);
  },
  "attachment:status": ({ attachment, message_id: messageId, conversation_id: conversationId }) => {
    if (thread.id === conversationId) thread.updateAttachment(messageId, attachment);
  },
  "contact:updated": ({ contact }) => {
    for (const conversation of known.values()) {
      if (conversation.contact?.id !== contact.id) continue;
      Object.assign(conversation.contact, contact);
      list.show(conversation);
      if (thread.conversation?.id === conversation.id) {
        thread.update(connections.get(conversation.connection_id));
      }
    }
  },
  "message:deleted": ({ id, conversation_id: conversationId }) => {
    if (thread.id === conversationId) thread.remove(id);
  },
  "conversation:read": ({ conversation_id: id, unread_count: unreadCount }) => {
    noteRead(id, unreadCount);
  },
  "note:created": ({ conversation_id: id, note }) => {
    if (thread.id === id) thread.addNote(note);
  },
  "conversation:labels": ({ conversation_id: id, labels: on }) => {
    const conversation = known.get(id);
    if (!conversation) return;
    conversation.labels = on;
    refreshOpen(conversation);
  },
  "conversation:assigned": handled,
  "conversation:status": handled,
  "label:created": ({ label }) => labels.put(label),
  "label:updated": ({ label }) => {
    labels.put(label);
    relabelAll();
  },
  "label:deleted": ({ label_id: id }) => {
    labels.remove(id);
    relabelAll();
  },
  "connection:status": ({ connection }) => {
    connections.set(connection.id, connection);
    renderBanners();
  },
  presence: (data) => presence.receive(data),
};

// Events were missed: load everything again.
function reload() {
  list.load();
  labels.load().catch(() => {});
  canned.load().catch(() => {});
  staff.load().catch(() => {});
  loadConnections().catch(() => {});
  if (thread.id) openConversation(thread.id);
}

// -- wiring ------------------------------------------------------------------

function setFilters() {
  list.filters.status = $("filter-status").value;
  list.filters.platform = $("filter-platform").value;
  list.filters.unread = $("filter-unread").checked;
  list.filters.label = $("filter-label").value;
  saveLocation();
  list.load();
}

function openRelative(step) {
  const ids = list.ids();
  const index = ids.indexOf(thread.id);
  const id = ids[index + step] ?? ids[step > 0 ? 0 : ids.length - 1];
  if (id !== undefined) openConversation(id);
}

function showView() {
  for (const button of document.querySelectorAll("[data-view]")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === list.filters.view));
  }
}

function wire() {
  for (const button of document.querySelectorAll("[data-view]")) {
    button.addEventListener("click", () => {
      list.filters.view = button.dataset.view;
      showView();
      setFilters();
    });
  }
  $("filter-status").addEventListener("change", setFilters);
  $("filter-platform").addEventListener("change", setFilters);
  $("filter-unread").addEventListener("change", setFilters);
  $("filter-label").addEventListener("change", setFilters);
  $("load-more").addEventListener("click", () => list.load({ more: true }));
  $("reply-text").addEventListener("input", () => presence.typed());
  $("conversations").addEventListener("click", (event) => {
    const link = event.target.closest("a[data-id]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    openConversation(Number(link.dataset.id));
  });
  $("message-list").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-retry]");
    if (button) retry(button);
  });
  // Alt+↓ / Alt+↑: the next or previous conversation in the list.
  document.addEventListener("keydown", (event) => {
    if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      openRelative(event.key === "ArrowDown" ? 1 : -1);
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    document.title = baseTitle;
    staff.load().catch(() => {}); // a colleague may have joined meanwhile
    markReadIfSeen();
  });
  setInterval(() => {
    refreshTimes();
    if (thread.conversation) composer.render();
  }, 30000);
}

function start() {
  const params = new URLSearchParams(location.search);
  const view = params.get("view");
  list.filters.view = ["mine", "unassigned"].includes(view) ? view : "all";
  const status = params.get("status");
  list.filters.status = status === "any" ? "" : status ?? "OPEN";
  list.filters.platform = params.get("platform") ?? "";
  list.filters.unread = params.get("unread") === "1";
  list.filters.label = params.get("label") ?? "";
  $("filter-status").value = list.filters.status;
  $("filter-platform").value = list.filters.platform;
  $("filter-unread").checked = list.filters.unread;
  showView();
  wire();
  wireAvailability(staff, admin);
  staff.load().catch(() => {});
  loadConnections().catch(() => {});
  labels.load().catch(() => {});
  canned.load().catch(() => {});
  list.load();
  const opened = Number(params.get("c"));
  if (opened) openConversation(opened);
  const since = Number($("inbox").dataset.since);
  const onEvent = (event) => handlers[event.type]?.(event.data);
  const onState = (state) => {
    showLiveState(state);
    if (state === "live") presence.resume();
    // The list said it would load again once the connection is back.
    if (state === "live" && list.failed) list.load();
  };
  live = followLive({ since, onEvent, onReset: reload, onState });
}

start();
