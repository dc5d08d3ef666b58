// Who else is here: the other staff members viewing or typing in the open
// conversation, shown under its header. The page tells the server over the live
// socket which conversation it shows and when its user types; the server answers
// with who is already there and passes on the others' changes (app/presence.py).
// Nothing of what anyone types is ever sent: only that they type.

import { el } from "./snorq.js";

const $ = (id) => document.getElementById(id);

// At most one "typing" this often while the user types (the server counts each for 6 s).
const TYPING_EVERY = 3000;
// The server announces every open page again each 15 s (app/presence.py): one not
// heard of for this long was on a web process that stopped.
const FORGET_AFTER = 45000;

function staffName(user) {
  return user.email.split("@")[0];
}

export class Presence {
  // `send` passes one message to the server over the live socket.
  constructor(send) {
    this.send = send;
    this.conversationId = null;
    this.typingAt = 0;
    this.others = new Map(); // user id -> the latest presence event's data, and when it came
    setInterval(() => this.forgetStale(), 5000);
  }

  // The page shows conversation `id` now (null: none).
  show(id) {
    if (id === this.conversationId) return;
    this.conversationId = id;
    this.typingAt = 0;
    this.others.clear();
    this.render();
    this.say("viewing");
  }

  // The user typed in the reply box.
  typed() {
    if (this.conversationId === null || Date.now() - this.typingAt < TYPING_EVERY) return;
    this.typingAt = Date.now();
    this.say("typing");
  }

  // The reply went: the user no longer types.
  sent() {
    if (!this.typingAt) return;
    this.typingAt = 0;
    this.say("viewing");
  }

  // The live connection is (back) up: its socket knows nothing of this page yet,
  // and tells it again who is there.
  resume() {
    this.others.clear();
    this.render();
    this.say(Date.now() - this.typingAt < TYPING_EVERY ? "typing" : "viewing");
  }

  say(state) {
    this.send({ type: "presence", conversation_id: this.conversationId, state });
  }

  // A `presence` event: where another staff member stands in a conversation
  // (`state` null: they left it).
  receive(data) {
    if (data.conversation_id !== this.conversationId) return;
    if (data.state) this.others.set(data.user.id, { ...data, heard: Date.now() });
    else this.others.delete(data.user.id);
    this.render();
  }

  forgetStale() {
    const before = this.others.size;
    for (const [id, entry] of this.others) {
      if (Date.now() - entry.heard > FORGET_AFTER) this.others.delete(id);
    }
    if (this.others.size !== before) this.render();
  }

  render() {
    const since = (entry) => entry.since ?? "";
    const entries = [...this.others.values()].sort((a, b) => since(a).localeCompare(since(b)));
    const node = $("thread-presence");
    node.replaceChildren(
      ...entries.map((entry) =>
        el("span", {
          class: `presence-${entry.state}`,
          title: entry.user.email,
          text: `${staffName(entry.user)} is ${entry.state === "typing" ? "typing…" : "viewing"}`,
        }),
      ),
    );
    node.hidden = entries.length === 0;
  }
}
