// Assignment and status: the organization's staff, the thread header's assignee picker
// and status buttons, the "Available" switch, and the admins' assign-in-turn setting.

import { api, el } from "./snorq.js";

const $ = (id) => document.getElementById(id);

export const STATUS_NAMES = { OPEN: "Open", PENDING: "Pending", SNOOZED: "Snoozed", RESOLVED: "Resolved" };
const untilFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "numeric", minute: "2-digit" });

// The staff of the organization, to name assignees; `me` is the signed-in member's id.
export class Staff {
  constructor(me, onChange) {
    this.me = me;
    this.all = new Map();
    this.onChange = onChange;
  }

  async load() {
    const data = await api("/api/v1/staff");
    this.all = new Map(data.staff.map((member) => [member.id, member]));
    this.onChange();
    $("me-available").checked = Boolean(this.all.get(this.me)?.available);
  }

  // What the page calls a staff member: "you", or their email's name.
  name(id) {
    if (id === this.me) return "you";
    const email = this.all.get(id)?.email;
    return email ? email.split("@")[0] : `staff ${id}`;
  }

  sorted() {
    return [...this.all.values()].sort((a, b) => a.email.localeCompare(b.email));
  }
}

// The status pill and who handles it, as the list's rows show them.
export function handlingTags(conversation, staff) {
  const status = conversation.status ?? "OPEN";
  const assignee = conversation.assignee_id;
  if (status === "OPEN" && !assignee) return null;
  return el(
    "span",
    { class: "conversation-tags" },
    status === "OPEN" ? null : statusPill(conversation),
    assignee ? el("span", { class: "assignee", text: `→ ${staff.name(assignee)}` }) : null,
  );
}

function statusPill(conversation) {
  const until = conversation.status === "SNOOZED" && conversation.snoozed_until;
  const text = until
    ? `Snoozed until ${untilFormat.format(new Date(conversation.snoozed_until))}`
    : STATUS_NAMES[conversation.status] ?? conversation.status;
  return el("span", { class: `status-pill status-${conversation.status}`, text });
}

// When a snooze choice ends, from now in the staff member's own time zone.
function snoozeEnd(choice) {
  const at = new Date();
  if (choice === "1h") at.setHours(at.getHours() + 1);
  else if (choice === "4h") at.setHours(at.getHours() + 4);
  else {
    const days = choice === "tomorrow" ? 1 : ((8 - at.getDay()) % 7 || 7);
    at.setDate(at.getDate() + days);
    at.setHours(9, 0, 0, 0);
  }
  return at.toISOString();
}

// The thread header's controls. `onSaved(conversation)` gets the conversation as the
// API answered.
export class Handling {
  constructor(staff, onSaved) {
    this.staff = staff;
    this.onSaved = onSaved;
    this.conversation = null;
    $("assignee-select").addEventListener("change", (event) => {
      const value = event.target.value;
      this.save("assign", { assignee_id: value ? Number(value) : null });
    });
    $("status-resolve").addEventListener("click", () => {
      const reopen = this.conversation.status === "RESOLVED";
      this.save("status", { status: reopen ? "OPEN" : "RESOLVED" });
    });
    $("status-pending").addEventListener("click", () => {
      const back = this.conversation.status === "PENDING";
      this.save("status", { status: back ? "OPEN" : "PENDING" });
    });
    $("status-snooze").addEventListener("change", (event) => {
      const choice = event.target.value;
      event.target.value = "";
      if (choice) this.save("status", { status: "SNOOZED", snoozed_until: snoozeEnd(choice) });
    });
  }

  show(conversation) {
    if (this.conversation?.id !== conversation.id) $("handling-error").hidden = true;
    this.conversation = conversation;
    const status = conversation.status ?? "OPEN";
    const pill = statusPill({ ...conversation, status });
    pill.id = "thread-status";
    $("thread-status").replaceWith(pill);
    $("status-resolve").textContent = status === "RESOLVED" ? "Reopen" : "Resolve";
    $("status-pending").textContent = status === "PENDING" ? "Open again" : "Pending";
    this.renderAssignees();
  }

  renderAssignees() {
    if (!this.conversation) return;
    const assignee = this.conversation.assignee_id;
    const options = this.staff.sorted().map((member) =>
      el("option", {
        value: member.id,
        text: member.id === this.staff.me ? `${member.email} (you)` : member.email,
        selected: member.id === assignee,
      }),
    );
    if (assignee && !this.staff.all.has(assignee)) {
      options.push(el("option", { value: assignee, text: this.staff.name(assignee), selected: true }));
    }
    $("assignee-select").replaceChildren(el("option", { value: "", text: "Unassigned" }), ...options);
    $("assignee-select").value = assignee ?? "";
  }

  async save(what, body) {
    const id = this.conversation.id;
    $("handling-error").hidden = true;
    try {
      const data = await api(`/api/v1/conversations/${id}/${what}`, { method: "POST", body });
      this.onSaved(data.conversation);
    } catch (error) {
      $("handling-error").hidden = false;
      $("handling-error").textContent = `Not saved: ${error.message}`;
      if (this.conversation?.id === id) this.show(this.conversation);
    }
  }
}

// "Available" for the signed-in member, and (for admins) the organization's assign-in-turn.
export function wireAvailability(staff, admin) {
  $("me-available").addEventListener("change", async (event) => {
    const box = event.target;
    try {
      const data = await api("/api/v1/staff/me", { method: "PATCH", body: { available: box.checked } });
      staff.all.set(data.staff.id, data.staff);
    } catch {
      box.checked = !box.checked;
    }
  });
  api("/api/v1/organization")
    .then((data) => {
      $("auto-assign").checked = data.organization.auto_assign;
    })
    .catch(() => {});
  if (!admin) return;
  $("auto-assign").addEventListener("change", async (event) => {
    const box = event.target;
    try {
      await api("/api/v1/organization", { method: "PATCH", body: { auto_assign: box.checked } });
    } catch {
      box.checked = !box.checked;
    }
  });
}
