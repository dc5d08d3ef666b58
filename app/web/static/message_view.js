// One message as the thread shows it: media, text, time, ticks, and a failure with
// its reason and a Retry button. Message JSON in, DOM out; what a customer wrote
// only ever becomes text nodes, and only http(s) addresses become links.

import { clockTime, el, fullTime, parseTime, platformLabel, timeElement } from "./snorq.js";

const SEND_UNCONFIRMED = 2009;
const TICKS = {
  PENDING: { mark: "", label: "Sending" },
  SENT: { mark: "✓", label: "Sent" },
  DELIVERED: { mark: "✓✓", label: "Delivered" },
  READ: { mark: "✓✓", label: "Read" },
  FAILED: { mark: "!", label: "Not sent" },
};
const CONTENT_LABELS = {
  IMAGE: "Photo",
  VIDEO: "Video",
  AUDIO: "Voice message",
  DOCUMENT: "Document",
  STICKER: "Sticker",
  LOCATION: "Location",
  CONTACTS: "Contact card",
  INTERACTIVE: "Button reply",
  REACTION: "Reaction",
  TEMPLATE: "Template",
  POSTBACK: "Button",
  SHARE: "Shared post",
  UNSUPPORTED: "A message SNORQ cannot show",
};
const ATTACHMENT_NAMES = {
  image: "Photo",
  video: "Video",
  audio: "Audio",
  document: "Document",
  sticker: "Sticker",
};
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
// What SNORQ writes for a message with no text of its own: "[Audio]",
// "[Document: receipt.pdf]", "[Location: 52.37, 4.89]" (app/platforms/parsing.py).
const PLACEHOLDER = /^\[([^\]\n]+)\]$/;
// Longer than this between the platform's time and SNORQ's, the tooltip says both.
const LATE = 60 * 1000;

// When the message was sent: the platform's time if it gave one, else SNORQ's.
export function sentAt(message) {
  return message.platform_timestamp ?? message.created_at;
}

export function renderMessage(message, platform) {
  if (message.content_type === "SYSTEM") {
    return el("div", { class: "msg system", dataset: { id: message.id }, text: message.content });
  }
  const outbound = message.direction === "OUTBOUND";
  const failed = message.status === "FAILED";
  // An outbound message no staff member sent came from the platform's own app.
  const via = outbound && message.sent_by === null;
  const bubble = el(
    "div",
    { class: "bubble" },
    (message.attachments ?? []).map(renderAttachment),
    renderContent(message, platform),
    el(
      "span",
      { class: "meta" },
      via ? el("span", { class: "via", text: `from the ${platformLabel(platform)} app` }) : null,
      renderTime(message),
      outbound ? renderTick(message) : null,
    ),
  );
  return el(
    "div",
    { class: `msg ${outbound ? "out" : "in"}${failed ? " failed" : ""}`, dataset: { id: message.id } },
    bubble,
    failed ? renderFailure(message) : null,
    message.unconfirmed_until ? renderUnconfirmed(message) : null,
  );
}

function renderTime(message) {
  const node = timeElement(sentAt(message), clockTime);
  const stored = parseTime(message.created_at);
  if (stored && Math.abs(stored - parseTime(sentAt(message))) >= LATE) {
    node.title += `\nReached SNORQ ${fullTime(stored)}`;
  }
  return node;
}

function renderContent(message, platform) {
  const files = message.attachments?.length > 0;
  // Text a customer typed is theirs, brackets or not.
  const placeholder = message.content_type !== "TEXT" && PLACEHOLDER.exec(message.content ?? "");
  // The file shows itself; only a caption is worth words under it.
  if (files && (placeholder || !message.content)) return null;
  if (!message.content || placeholder) {
    const label = placeholder
      ? placeholder[1]
      : (CONTENT_LABELS[message.content_type] ?? "Message");
    const unsupported = message.content_type === "UNSUPPORTED";
    return el(
      "p",
      { class: "text placeholder" },
      linkify(label),
      unsupported ? ` · open it in the ${platformLabel(platform)} app` : null,
    );
  }
  // Say what kind of message it is, unless its text or media already shows it.
  const plain = ["TEXT", "TEMPLATE"].includes(message.content_type) || files;
  const kind = CONTENT_LABELS[message.content_type] ?? message.content_type;
  return el(
    "p",
    { class: "text" },
    plain ? null : el("span", { class: "kind", text: kind }),
    linkify(message.content),
  );
}

function linkify(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const url = match[0].replace(/[.,!?;:)\]]+$/, "");
    parts.push(text.slice(last, match.index));
    parts.push(el("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow", text: url }));
    last = match.index + url.length;
  }
  parts.push(text.slice(last));
  return parts;
}

function renderTick(message) {
  const tick = TICKS[message.status] ?? TICKS.PENDING;
  const waiting = Boolean(message.unconfirmed_until);
  const label = waiting ? "Waiting for the platform to confirm" : tick.label;
  const history = [
    ["Sent", message.sent_at],
    ["Delivered", message.delivered_at],
    ["Read", message.read_at],
  ]
    .filter(([, at]) => at)
    .map(([name, at]) => `${name} ${fullTime(parseTime(at))}`);
  return el("span", {
    class: `tick tick-${message.status.toLowerCase()}`,
    title: [label, ...history].join("\n"),
    "aria-label": label,
    text: tick.mark,
  });
}

function renderFailure(message) {
  const reason = message.error_message || "The platform did not accept this message.";
  const code = message.error_code ? ` (${message.error_code})` : "";
  return el(
    "div",
    { class: "failure" },
    el("span", { text: `Not sent: ${reason}${code}` }),
    message.error_code === SEND_UNCONFIRMED
      ? el("span", { class: "muted", text: "It may have arrived; a retry could send it twice." })
      : null,
    el("button", { type: "button", class: "retry", dataset: { retry: message.id }, text: "Retry" }),
  );
}

// A send the platform never answered: not queued, not failed; SNORQ waits for the
// platform's webhooks until the time shown, then fails it (README, "Sending replies").
function renderUnconfirmed(message) {
  const until = parseTime(message.unconfirmed_until);
  return el(
    "div",
    { class: "unconfirmed", title: message.error_message || "" },
    el("span", { "aria-hidden": "true", text: "⚠ " }),
    el("span", { text: `Not confirmed — waiting for the platform until ${clockTime(until)}` }),
  );
}

function sameSiteUrl(url) {
  return typeof url === "string" && url.startsWith("/") && !url.startsWith("//") ? url : null;
}

function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function renderAttachment(attachment) {
  const kind = (attachment.kind ?? "").toLowerCase();
  const name = attachment.filename || ATTACHMENT_NAMES[kind] || "File";
  if (attachment.status === "FAILED") {
    const reason = attachment.error || "the platform did not provide it";
    return el("div", { class: "attachment unavailable", text: `${name} unavailable: ${reason}` });
  }
  const url = sameSiteUrl(attachment.url);
  if (attachment.status !== "AVAILABLE" || !url) {
    return el("div", { class: "attachment loading", text: `${name}: loading…` });
  }
  if (kind === "image" || kind === "sticker") {
    return el(
      "a",
      { class: "attachment", href: url, target: "_blank", rel: "noopener" },
      el("img", { class: kind, src: url, alt: name, loading: "lazy" }),
    );
  }
  if (kind === "audio") {
    // Only the file's header: enough for the player to say how long it lasts.
    return el("audio", { class: "attachment", controls: true, preload: "metadata", src: url });
  }
  if (kind === "video") {
    return el("video", { class: "attachment", controls: true, preload: "metadata", src: url });
  }
  const size = attachment.size ? ` · ${fileSize(attachment.size)}` : "";
  return el("a", {
    class: "attachment document",
    href: url,
    download: attachment.filename || "",
    text: `${name}${size}`,
  });
}
