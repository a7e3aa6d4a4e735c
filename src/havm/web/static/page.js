// What every signed-in page does: find out who we are, load the status and the
// recent history, then follow the live stream. Pages pass render(model, me).

import { api, LiveStream, logout, toLogin, whoami } from "./api.js";
import { showConnection, showIdentity, toast } from "./dom.js";
import { ClusterModel } from "./model.js";

// Event kinds after which the status is fetched again at once (the stream's
// periodic status would show the change too, a little later).
const CHANGES = ["action", "node.", "quorum.", "controller.", "fence", "config.", "resource."];
const HISTORY_EVERY = 10; // seconds

export async function startPage({ render, tick, historyQuery = "limit=200" }) {
  document.getElementById("logout").addEventListener("click", logout);
  const model = new ClusterModel();
  let me;
  try {
    me = await whoami();
    model.setStatus(await api("/v1/status"));
  } catch (e) {
    if (e.status === 401) return toLogin();
    toast(`cannot load the cluster status: ${e.message}`, "error");
    me = me || { role: "read" };
  }
  let pending = null;
  const draw = () => {
    if (!model.status) return;
    showIdentity(me, model.status);
    render(model, me);
  };
  const refresh = () => {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      try { model.setStatus(await api("/v1/status")); draw(); } catch { /* the stream shows it */ }
    }, 250);
  };
  draw();
  // The stream carries the events of the node serving this page; the others'
  // (the controller's actions and fencing...) come from the merged history,
  // read again when the status shows a change, and every HISTORY_EVERY seconds.
  let lastChange = "";
  let historyTimer = null;
  const loadHistory = async () => {
    const newest = model.sortedEvents().slice(-1)[0];
    const since = newest ? `&since=${Math.floor(newest.time - 30)}` : "";
    try {
      const hist = await api(`/v1/history?${historyQuery}${since}`);
      model.addEvents(Array.isArray(hist) ? hist : (hist && hist.events) || []);
      draw();
    } catch (e) {
      if (!newest && e.status !== 401) toast(`cannot load the history: ${e.message}`, "error");
    }
  };
  const historySoon = () => { clearTimeout(historyTimer); historyTimer = setTimeout(loadHistory, 500); };
  await loadHistory();
  setInterval(loadHistory, HISTORY_EVERY * 1000);
  const stream = new LiveStream({
    onStatus: (st) => {
      model.setStatus(st);
      draw();
      const change = JSON.stringify([st.members, st.controller, st.config && st.config.version,
        (st.resources || []).map((r) => [r.id, r.nodes, r.failed_on, r.failcounts])]);
      if (change !== lastChange) { lastChange = change; historySoon(); }
    },
    onEvent: (ev) => {
      model.addEvents([ev]);
      draw();
      if (CHANGES.some((k) => ev.kind.startsWith(k))) refresh();
    },
    onState: (state, retry) => {
      showConnection(state, retry);
      if (state === "live") refresh();
    },
  });
  stream.start();
  if (tick) setInterval(() => { if (model.status) tick(model); }, 1000); // elapsed times
  return { model, me, stream };
}
