// Shared by SNORQ's pages: building DOM without ever parsing HTML, the JSON API, times.

const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export const PLATFORMS = {
  whatsapp: { label: "WhatsApp", short: "WA" },
  facebook: { label: "Messenger", short: "M" },
  tiktok: { label: "TikTok", short: "TT" },
};

// An element with properties and children. Strings become text nodes, so data
// from customers is never interpreted as markup.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Call the JSON API with the session cookie (and the CSRF token on changes).
// A FormData body goes as multipart (a file); any other as JSON.
// A 401 means the session ended: go to the sign-in page and come back here.
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const form = body instanceof FormData;
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined || form ? body : JSON.stringify(body),
  });
  if (response.status === 401) {
    const here = location.pathname + location.search;
    location.assign(`/login?next=${encodeURIComponent(here)}`);
    throw new ApiError(401, "Signed out");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.error || response.statusText);
  return data;
}

export function platformBadge(platform) {
  const known = PLATFORMS[platform];
  return el("span", {
    class: `badge badge-${known ? platform : "other"}`,
    title: known ? known.label : platform,
    text: known ? known.short : "?",
  });
}

export function platformLabel(platform) {
  return PLATFORMS[platform]?.label ?? platform;
}

export function parseTime(iso) {
  return iso ? new Date(iso) : null;
}

const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const dayFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const yearFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const DAY = 24 * 60 * 60 * 1000;

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

function daysAgo(date, now) {
  return Math.round((startOfDay(now) - startOfDay(date)) / DAY);
}

// "now", "5 min", "14:05", "Yesterday", "Mon", "12 Mar", "12 Mar 2024".
export function shortTime(date, now = new Date()) {
  const minutes = Math.floor((now - date) / 60000);
  if (minutes < 1) return "now";
  if (minutes < 60) return `${minutes} min`;
  const days = daysAgo(date, now);
  if (days === 0) return clockFormat.format(date);
  if (days === 1) return "Yesterday";
  if (days < 7) return weekdayFormat.format(date);
  if (date.getFullYear() === now.getFullYear()) return dayFormat.format(date);
  return yearFormat.format(date);
}

export function clockTime(date) {
  return clockFormat.format(date);
}

export function fullTime(date) {
  return fullFormat.format(date);
}

// A day heading in a thread: "Today", "Yesterday", or the date.
export function dayLabel(date, now = new Date()) {
  const days = daysAgo(date, now);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return days < 7 ? weekdayFormat.format(date) : yearFormat.format(date);
}

// "3 h", "25 min", "2 days": how long until (or since) a moment.
export function duration(milliseconds) {
  const minutes = Math.max(1, Math.round(Math.abs(milliseconds) / 60000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.round(hours / 24)} days`;
}

// A <time> that keeps itself current (see refreshTimes).
export function timeElement(iso, format = shortTime) {
  const date = parseTime(iso);
  if (!date) return el("time");
  const node = el("time", { datetime: iso, title: fullTime(date), text: format(date) });
  if (format === shortTime) node.dataset.relative = "";
  return node;
}

export function refreshTimes(root = document) {
  const now = new Date();
  for (const node of root.querySelectorAll("time[data-relative]")) {
    node.textContent = shortTime(new Date(node.dateTime), now);
  }
}

// The state of the live connection, shown in the top bar.
export function showLiveState(state) {
  const node = document.getElementById("live-state");
  if (!node) return;
  node.hidden = false;
  node.className = `live-state live-${state}`;
  node.textContent = state === "live" ? "Live" : "Reconnecting…";
  node.title =
    state === "live"
      ? "New messages appear as they arrive."
      : "The live connection dropped; catching up as soon as it is back.";
}
