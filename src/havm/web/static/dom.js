// Small DOM helpers shared by the pages: element building, formatting, the
// header (connection state, who is signed in) and toasts.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function replaceChildren(el, children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

export function badge(text, kind = text) {
  return h("span", { class: `badge b-${String(kind).replace(/[^a-z0-9-]/gi, "")}` }, text);
}

export function clock(t) {
  if (!t) return "";
  return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
}

export function ago(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds < 1) return "now";
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  return `${Math.round(seconds / 60)} min ago`;
}

export function duration(s) {
  if (s === null || s === undefined) return "";
  return s < 10 ? `${s.toFixed(2)} s` : `${Math.round(s)} s`;
}

export function empty(text) {
  return h("li", { class: "muted" }, text);
}

// Header: connection state of the live stream (a visible "disconnected").
export function showConnection(state, retryIn) {
  const el = document.getElementById("connection");
  el.dataset.state = state;
  el.textContent = state === "live" ? "live"
    : state === "connecting" ? "connecting…"
    : `disconnected — retrying in ${retryIn} s`;
  document.body.classList.toggle("stale", state === "disconnected");
}

export function showIdentity(me, status) {
  const who = document.getElementById("whoami");
  who.textContent = me.role === "admin" ? "admin" : "read-only";
  who.dataset.role = me.role;
  if (status) {
    document.getElementById("cluster-name").textContent = `${status.cluster} · via ${status.node}`;
  }
}

let toastTimer = null;
export function toast(text, kind = "info") {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

export function eventRow(ev) {
  return h("tr", { dataset: { kind: ev.kind, seq: `${ev.node}:${ev.seq}` } },
    h("td", {}, h("time", { datetime: new Date(ev.time * 1000).toISOString() }, clock(ev.time))),
    h("td", {}, ev.node),
    h("td", {}, badge(ev.kind, ev.kind.split(".")[0] + (ev.fields && ev.fields.ok === false ? "-failed" : ""))),
    h("td", {}, ev.text));
}

// Redraw ``el`` only when ``key`` (any JSON-able value) changed since its last
// drawing: keeps focus and hover on buttons that did not change.
const drawn = new WeakMap();
export function drawIfChanged(el, key, children) {
  const k = JSON.stringify(key);
  if (drawn.get(el) === k) return;
  drawn.set(el, k);
  replaceChildren(el, typeof children === "function" ? children() : children);
}
