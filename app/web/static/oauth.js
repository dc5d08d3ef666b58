// A connect attempt's page: follows the worker's code exchange until it ends.

import { api, el } from "./snorq.js";

const POLL_MS = 1000;
const page = document.getElementById("connect-attempt");
const title = page.dataset.title;

function statusText(attempt) {
  if (attempt.status === "CONNECTED") return "Connected.";
  if (attempt.status === "FAILED") return `Could not connect: ${attempt.reason}`;
  return `Connecting… SNORQ is finishing the authorization with ${title}; this page updates by itself.`;
}

function renderAccount(account) {
  return el(
    "li",
    { class: `connection${account.connection_id ? "" : " needs-reauth"}` },
    el(
      "div",
      { class: "connection-body" },
      el("strong", { text: account.name || account.account_id }),
      el("span", { class: "muted", text: account.error || "Connected" }),
    ),
  );
}

function render(attempt) {
  const status = document.getElementById("attempt-status");
  status.textContent = statusText(attempt);
  status.dataset.status = attempt.status;
  document.getElementById("attempt-accounts").replaceChildren(...attempt.accounts.map(renderAccount));
}

async function follow() {
  const data = await api(`/api/v1/platforms/connect-attempts/${page.dataset.attemptId}`);
  render(data.attempt);
  if (data.attempt.status === "CONNECTING") setTimeout(() => follow().catch(retry), POLL_MS);
}

function retry() {
  setTimeout(() => follow().catch(retry), POLL_MS * 5);
}

if (document.getElementById("attempt-status").dataset.status === "CONNECTING") {
  follow().catch(retry);
}
