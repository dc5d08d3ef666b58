// The connections page: each connected account and its state, kept current live.

import {
  api,
  el,
  fullTime,
  parseTime,
  platformBadge,
  platformLabel,
  showLiveState,
} from "./snorq.js";
import { followLive } from "./live.js";

const connections = new Map();

function renderConnection(connection) {
  const healthy = connection.status === "ACTIVE";
  const expires = parseTime(connection.token_expires_at);
  return el(
    "li",
    { class: `connection${healthy ? "" : " needs-reauth"}` },
    platformBadge(connection.platform),
    el(
      "div",
      { class: "connection-body" },
      el("strong", { text: connection.name || connection.account_id }),
      el("span", {
        class: "muted",
        text: `${platformLabel(connection.platform)} · account ${connection.account_id}`,
      }),
      expires ? el("span", { class: "muted", text: `Token expires ${fullTime(expires)}` }) : null,
    ),
    healthy
      ? el("span", { class: "status status-ok", text: "Connected" })
      : el(
          "span",
          { class: "status status-reauth" },
          el("span", {
            text: `Needs re-authorization${connection.status_reason ? `: ${connection.status_reason}` : ""}`,
          }),
          el("a", {
            class: "button",
            href: `/api/v1/platforms/connect/${encodeURIComponent(connection.platform)}`,
            text: "Reconnect",
          }),
        ),
  );
}

function render() {
  const items = [...connections.values()].map(renderConnection);
  document.getElementById("connection-list").replaceChildren(...items);
  document.getElementById("connections-empty").hidden = items.length > 0;
}

async function load() {
  const data = await api("/api/v1/connections");
  connections.clear();
  for (const connection of data.connections) connections.set(connection.id, connection);
  render();
}

function onEvent(event) {
  if (event.type !== "connection:status") return;
  connections.set(event.data.connection.id, event.data.connection);
  render();
}

const since = Number(document.getElementById("connections-page").dataset.since);
load().catch(() => {});
followLive({ since, onEvent, onReset: () => load().catch(() => {}), onState: showLiveState });
