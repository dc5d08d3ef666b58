// The reply box. Free text while the messaging window is open; after it, WhatsApp
// takes approved templates and the other platforms wait for the customer to write.

import { api, duration, el, parseTime } from "./snorq.js";

const $ = (id) => document.getElementById(id);

const TYPING_EVERY = 15000;
const WINDOW_WARNING = 60 * 60 * 1000;
// What a file's text can go with as its caption (elsewhere the text is a reply of its own).
const CAPTIONS = { whatsapp: ["image", "video", "document"] };

function fileKind(file) {
  const major = file.type.split("/")[0];
  return ["image", "audio", "video"].includes(major) ? major : "document";
}

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function windowState(conversation, open, left) {
  const whatsapp = conversation.platform === "whatsapp";
  if (open) return conversation.window_closes_at ? `Window closes in ${duration(left)}.` : "";
  if (!conversation.window_closes_at) {
    return whatsapp
      ? "The customer has not written yet: only an approved template can start the conversation."
      : "You can reply once the customer writes.";
  }
  return whatsapp
    ? `The 24-hour window closed ${duration(left)} ago: send an approved template instead.`
    : `The messaging window closed ${duration(left)} ago. You can reply when the customer writes again.`;
}

export class Composer {
  // `onSent` receives each reply the API accepted.
  constructor(onSent) {
    this.onSent = onSent;
    this.conversation = null;
    this.drafts = new Map();
    this.key = null;
    this.sending = false;
    this.lastTyping = 0;
    this.file = null;
    this.wire();
  }

  // Show the reply box for a conversation, keeping each conversation's unsent text.
  show(conversation) {
    if (this.conversation?.id !== conversation.id) {
      if (this.conversation) this.drafts.set(this.conversation.id, $("reply-text").value);
      $("reply-text").value = this.drafts.get(conversation.id) ?? "";
      $("reply-error").hidden = true;
      this.key = null;
      this.attach(null);
    }
    this.conversation = conversation;
    this.render();
  }

  render() {
    const conversation = this.conversation;
    const closesAt = parseTime(conversation.window_closes_at);
    const left = closesAt ? closesAt - Date.now() : 0;
    const open = conversation.can_reply && (!closesAt || left > 0);
    const whatsapp = conversation.platform === "whatsapp";
    const status = $("window-state");
    status.textContent = windowState(conversation, open, left);
    status.classList.toggle("warning", open && closesAt !== null && left < WINDOW_WARNING);
    status.classList.toggle("closed", !open);
    $("reply-form").hidden = !open && whatsapp;
    $("template-form").hidden = open || !whatsapp;
    $("reply-text").disabled = !open;
    $("reply-send").disabled = !open;
    $("reply-attach").disabled = !open;
  }

  // The file the next reply carries (null: none), shown under the reply box.
  attach(file) {
    this.file = file;
    this.key = null;
    $("reply-file").value = "";
    $("reply-attached").hidden = !file;
    $("reply-file-name").textContent = file ? `Attached: ${file.name}` : "";
  }

  showError(error) {
    $("reply-error").hidden = false;
    $("reply-error").textContent = error.status
      ? `Not sent: ${error.message}`
      : "Not sent: the connection dropped. Send again to retry; it will not be sent twice.";
  }

  // Send one reply (a JSON body, or FormData carrying a file). Its idempotency key
  // stays the same until the API accepts it, so sending again after a dropped
  // connection never delivers it twice.
  async send(conversation, body) {
    if (this.sending) return false;
    this.key ??= newKey();
    this.sending = true;
    if (body instanceof FormData) body.set("idempotency_key", this.key);
    try {
      const data = await api(`/api/v1/conversations/${conversation.id}/messages`, {
        method: "POST",
        body: body instanceof FormData ? body : { ...body, idempotency_key: this.key },
      });
      this.key = null;
      $("reply-error").hidden = true;
      this.onSent(data.message);
      return true;
    } catch (error) {
      this.showError(error);
      return false;
    } finally {
      this.sending = false;
    }
  }

  async sendText() {
    const conversation = this.conversation;
    const text = $("reply-text").value;
    if ((!text.trim() && !this.file) || $("reply-text").disabled) return;
    const caption = this.file && CAPTIONS[conversation.platform]?.includes(fileKind(this.file));
    if (this.file && !(await this.sendFile(conversation, caption ? text : ""))) return;
    if (text.trim() && !caption && !(await this.send(conversation, { content: text }))) return;
    this.drafts.delete(conversation.id);
    if (this.conversation === conversation) $("reply-text").value = "";
  }

  async sendFile(conversation, caption) {
    const form = new FormData();
    form.set("file", this.file);
    if (caption.trim()) form.set("content", caption);
    if (!(await this.send(conversation, form))) return false;
    this.attach(null);
    return true;
  }

  async sendTemplate() {
    const values = [...$("template-params").querySelectorAll("input")].map((input) => input.value);
    const template = {
      name: $("template-name").value.trim(),
      language: $("template-language").value.trim(),
      components: values.length
        ? [{ type: "body", parameters: values.map((text) => ({ type: "text", text })) }]
        : [],
    };
    if (await this.send(this.conversation, { content: "", template })) {
      $("template-params").replaceChildren();
    }
  }

  addTemplateParameter() {
    const number = $("template-params").children.length + 1;
    const input = el("input", { "aria-label": `Parameter {{${number}}}` });
    $("template-params").append(el("label", {}, `{{${number}}} `, input));
    input.focus();
  }

  // The text changed, so it is a new message; where the platform can, the
  // customer sees "typing…".
  onInput() {
    this.key = null;
    if (Date.now() - this.lastTyping < TYPING_EVERY) return;
    this.lastTyping = Date.now();
    const path = `/api/v1/conversations/${this.conversation.id}/typing`;
    api(path, { method: "POST" }).catch(() => {});
  }

  wire() {
    $("reply-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendText();
    });
    $("reply-text").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.sendText();
      }
    });
    $("reply-text").addEventListener("input", () => this.onInput());
    $("reply-attach").addEventListener("click", () => $("reply-file").click());
    $("reply-file").addEventListener("change", () => this.attach($("reply-file").files[0] ?? null));
    $("reply-detach").addEventListener("click", () => this.attach(null));
    $("template-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendTemplate();
    });
    $("template-add-param").addEventListener("click", () => this.addTemplateParameter());
  }
}
