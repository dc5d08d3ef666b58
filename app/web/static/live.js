// The organization's live events from /ws: reconnects with backoff and, before each
// attempt, catches up through the API from the last sequence number, so a dropped
// connection never loses an event. Events without a number (presence) are not
// caught up: they only matter while they are fresh.

import { api } from "./snorq.js";

const FIRST_DELAY = 1000;
const MAX_DELAY = 30000;
// The server sends at least a heartbeat every 25 s; silence this long means a dead line.
const SILENCE_LIMIT = 60000;
// Replaying more than this is slower than reloading.
const MAX_REPLAY = 500;

export function followLive({ since, onEvent, onReset, onState }) {
  let seq = since;
  let delay = FIRST_DELAY;
  let socket = null;
  let retryTimer = null;
  let watchdog = null;

  function reset(latest) {
    seq = latest;
    onReset();
  }

  function receive(event) {
    if (event.type === "heartbeat") return;
    if (event.type === "reset") return reset(event.seq);
    if (event.seq === undefined) return onEvent(event);
    // The API catch-up and the socket overlap: each event is applied once.
    if (event.seq <= seq) return;
    seq = event.seq;
    onEvent(event);
  }

  function listenForSilence() {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => socket?.close(), SILENCE_LIMIT);
  }

  function connect() {
    retryTimer = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws?since=${seq}`);
    socket.addEventListener("open", () => {
      delay = FIRST_DELAY;
      onState("live");
    });
    socket.addEventListener("message", (message) => {
      listenForSilence();
      receive(JSON.parse(message.data));
    });
    socket.addEventListener("close", () => {
      clearTimeout(watchdog);
      socket = null;
      onState("reconnecting");
      retry();
    });
    listenForSilence();
  }

  async function catchUp() {
    const data = await api(`/api/v1/events?since=${seq}`);
    if (!data.complete || data.latest < seq || data.events.length > MAX_REPLAY) {
      reset(data.latest);
    } else {
      data.events.forEach(receive);
    }
  }

  function retry() {
    if (retryTimer) return;
    const wait = delay * (1 + Math.random() / 2);
    delay = Math.min(delay * 2, MAX_DELAY);
    retryTimer = setTimeout(async () => {
      try {
        await catchUp();
      } catch {
        // Offline or the server is down: the socket attempt below fails too and backs off.
      }
      connect();
    }, wait);
  }

  // Back online or back in front of the user: do not wait out the backoff.
  function retrySoon() {
    if (!retryTimer) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    delay = FIRST_DELAY;
    retry();
  }

  window.addEventListener("online", retrySoon);
  // The browser knows the network is gone: say so now, not after the silence limit.
  window.addEventListener("offline", () => socket?.close());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") retrySoon();
  });
  connect();
  // What the page says over the socket (its presence); dropped while it is down,
  // so the page says it again once the state is "live".
  return {
    send(message) {
      if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    },
  };
}
